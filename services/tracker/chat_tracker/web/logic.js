// The page's own logic, with no DOM and no socket: name colours, commands, backoff,
// close codes, what a member remembers across connections (Memory) and where its session
// stands (LinkMachine). Each rule is a port of the terminal client's (chat_client/render.py,
// commands.py, backoff.py, resume.py, link_state.py; chat_protocol/names.py, text.py,
// codes.py), and tests/web checks the ports against the Python originals by running these
// functions in the browser.

export const SUBPROTOCOL = "groupchat.v1";

// --- names -------------------------------------------------------------------------

// chat_protocol.names.name_key: lower case, 0->o, 1->l, i->l, and - . _ dropped.
const LOOKALIKES = new Map([["0", "o"], ["1", "l"], ["i", "l"], ["-", ""], [".", ""], ["_", ""]]);

export function nameKey(name) {
  let key = "";
  for (const char of name.toLowerCase()) {
    key += LOOKALIKES.has(char) ? LOOKALIKES.get(char) : char;
  }
  return key;
}

// The terminal client's palette has 11 colours (render.PALETTE); style.css defines
// .c0-.c10 in the same order, so a name has the same hue in both.
export const PALETTE_SIZE = 11;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

// zlib.crc32 of bytes.
export function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// render.name_style: crc32 of the UTF-8 name key, modulo the palette.
export function colourIndex(name) {
  return crc32(new TextEncoder().encode(nameKey(name))) % PALETTE_SIZE;
}

// True if `text` mentions `name`, in any spelling that is the same name (ALPHA, @a1pha).
export function mentions(text, name) {
  const key = nameKey(name);
  return (text.match(/[A-Za-z0-9_.-]+/g) || []).some((word) => nameKey(word) === key);
}

// --- text --------------------------------------------------------------------------

// chat_protocol.text.sanitize_for_terminal: controls, separators, lone surrogates and
// bidi controls become visible escapes, so nobody can forge a line or reverse our text.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|[\ud800-\udfff]/gu;
const SIMPLE = new Map([["\n", "\\n"], ["\r", "\\r"], ["\t", "\\t"]]);

export function safe(text) {
  return String(text).replace(UNSAFE, (char) => {
    if (SIMPLE.has(char)) return SIMPLE.get(char);
    const code = char.charCodeAt(0);
    return code <= 0xff ? "\\x" + code.toString(16).padStart(2, "0") : "\\u" + code.toString(16).padStart(4, "0");
  });
}

// Characters as Python counts them (code points), for the tracker's max_message_chars.
export function length(text) {
  return [...text].length;
}

export function hasLoneSurrogate(text) {
  return /[\ud800-\udfff]/u.test(text);
}

// --- commands (chat_client/commands.py) --------------------------------------------

const COMMANDS = new Map([
  ["/quit", "quit"],
  ["/exit", "quit"],
  ["/who", "who"],
  ["/help", "help"],
  ["/register", "register"],
  ["/part", "part"],
]);

export const HELP = [
  "Commands:",
  "  /who          who is online",
  "  /register     make your name yours, with a passphrase that joining under it will take",
  "  exit, /quit   leave the chat (a registered name stays a member, offline)",
  "  /part         leave for good: a registered name stops being a member",
  "  /join #room   enter a room (created if new; '/join #room private' makes a new one private)",
  "  /part #room   leave that room (/part alone, in a room's view: this room)",
  "  /rooms        list the public rooms",
  "  /invite NAME  let NAME into the room shown (or /invite NAME #room)",
  "  /remove NAME  take NAME out of the room shown, if you made it (or /remove NAME #room)",
  "  /msg NAME text  a direct message to NAME alone",
  "  /help         this help",
  "  //text        send a message that starts with '/'",
  "Any other line is sent to the room (or the person) shown.",
];

// {action, text}: action is send, quit, who, help, nothing or unknown.
export function parseCommand(line) {
  const stripped = line.trim();
  if (!stripped) return { action: "nothing", text: "" };
  if (stripped === "exit") return { action: "quit", text: "" };
  if (stripped.startsWith("//")) return { action: "send", text: line.trimStart().slice(1) };
  if (stripped.startsWith("/")) {
    const word = stripped.split(/\s+/)[0].toLowerCase();
    const action = COMMANDS.get(word) || "unknown";
    return { action, text: action === "unknown" ? word : "" };
  }
  return { action: "send", text: line };
}

// --- accounts (chat_protocol/accounts.py) ----------------------------------------------

export const MIN_PASSPHRASE_CHARS = 8;
export const MAX_PASSPHRASE_CHARS = 1024;

// Why a new passphrase (typed twice) cannot protect a name, or "" when it can.
export function passphraseProblem(passphrase, again) {
  const chars = length(passphrase);
  if (chars < MIN_PASSPHRASE_CHARS) return `A passphrase needs at least ${MIN_PASSPHRASE_CHARS} characters.`;
  if (chars > MAX_PASSPHRASE_CHARS) return `A passphrase has at most ${MAX_PASSPHRASE_CHARS} characters.`;
  if (passphrase !== again) return "The two passphrases differ.";
  return "";
}

// --- reconnecting (chat_client/backoff.py, chat_protocol/codes.py) -----------------

export const BACKOFF_BASE = 0.5;
export const BACKOFF_CAP = 10;

// Seconds before reconnection attempt `attempt` (0-based): 0.25-0.5, 0.5-1, ... then 5-10.
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ** Math.min(Math.max(attempt, 0), 16));
  return ceiling * (0.5 + 0.5 * random());
}

// Close codes the tracker sends, and whether a client may reconnect on its own after them.
const RETRY = new Map([
  [1000, false], [1001, false], [1003, false], [1007, false], [1009, false], [1011, true], [1012, true],
  [4001, false], [4002, true], [4003, false], [4005, true], [4006, true], [4007, true], [4008, false],
  [4009, true], [4010, false], [4011, false], [4012, false], [4013, true], [4014, true], [4015, false],
]);

export function shouldRetry(code) {
  if (code === null || code === undefined) return true;
  if (RETRY.has(code)) return RETRY.get(code);
  return [1006, 1012, 1013, 1014].includes(code);
}

// Why someone left, in words (chat_protocol/reasons.py).
export const LEAVE_REASONS = {
  exit: "",
  closed: "",
  lost: " (connection lost)",
  flooding: " (removed for flooding)",
  slow: " (removed: too slow to keep up)",
  shutdown: "",
  kicked: " (removed by a moderator)",
  banned: " (banned)",
  offline: " (offline)",
  part: " for good",
  removed: " (removed by the room's owner)",
};

// --- pacing (chat_client/pacing.py) ------------------------------------------------

// A token bucket below the tracker's announced rate, so a burst of resends after a
// reconnect is never refused as rate_limited.
export class TokenBucket {
  constructor(rate, burst, now = () => performance.now() / 1000) {
    this.rate = Math.max(rate, 0.001);
    this.capacity = Math.max(burst, 1);
    this.now = now;
    this.tokens = this.capacity;
    this.updated = now();
  }

  static below(limits, now) {
    return new TokenBucket(limits.rate_per_second * 0.8, Math.max(1, Math.floor(limits.rate_burst * 0.5)), now);
  }

  // Take a token; seconds to wait before using it (0 if one was free).
  reserve() {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updated) * this.rate);
    this.updated = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : -this.tokens / this.rate;
  }
}

// --- what a member remembers across connections (chat_client/resume.py) ------------

export const MAX_WAITING = 100;

function randomTag() {
  const bytes = new Uint8Array(4);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// "3fa4c2d1-1", "3fa4c2d1-2", ...: unique for this member without coordination.
export function* messageIds(tag = randomTag()) {
  for (let number = 1; ; number++) yield `${tag}-${number}`;
}

// Events in chat.log: they carry a seq, are replayed after a resume, and are never shown twice.
const LOGGED = new Set(["welcome", "joined", "message", "left", "moderation", "announcement", "presence"]);

// The resume credentials, the last seq received, the messages sent but not echoed yet
// (unacknowledged) and the lines typed while no connection was up (waiting).
export class Memory {
  constructor(welcome, ids = messageIds()) {
    this.ids = ids;
    this.unacknowledged = [];
    this.waiting = [];
    this.placeSeqs = new Map(); // room or conversation (placeSeqKey) -> the last seq received there
    this.onWelcome(welcome);
  }

  // A (fresh) join: new name, token and epoch. lastSeq is set, not maxed: a new epoch restarts seqs.
  onWelcome(welcome) {
    if (welcome.epoch !== this.epoch) this.placeSeqs = new Map(); // a new epoch restarts every order
    this.name = welcome.name;
    this.token = welcome.token || "";
    this.epoch = welcome.epoch || "";
    this.limits = welcome.limits;
    this.lastSeq = welcome.seq;
    this.replay = null;
  }

  // The resume frame for a new connection; null if the tracker gave no token.
  resumeRequest() {
    if (!this.token) return null;
    return { type: "resume", token: this.token, epoch: this.epoch, after: this.lastSeq };
  }

  onResumed(resumed) {
    this.name = resumed.name;
    this.token = resumed.token;
    this.epoch = resumed.epoch;
    this.limits = resumed.limits;
    this.replay = { until: resumed.seq, left: resumed.replayed };
    this.finishReplayIfDone();
  }

  get replaying() {
    return this.replay !== null;
  }

  // One frame in: true if it is to be shown, false for an event already received. An
  // echo of our own message acknowledges it: by id, or (a replay read back from
  // chat.log after a restart carries no id) the oldest unacknowledged one of that text.
  // An error naming one of ours refuses it: never to be echoed, so not to be sent again.
  onEvent(message) {
    if (message.type === "error" && typeof message.id === "string") this.refused(message.id);
    if (!LOGGED.has(message.type)) return true;
    const seqKey = placeSeqKey(message);
    if (seqKey !== null) return this.onPlaceEvent(message, seqKey);
    const fresh = message.seq > this.lastSeq;
    if (message.type === "message" && message.name === this.name) this.acknowledge(message, fresh);
    if (!fresh) return false;
    this.lastSeq = message.seq;
    if (this.replay !== null) {
      this.replay.left -= 1;
      this.finishReplayIfDone();
    }
    return true;
  }

  // An event of another room or of a conversation: each has its own order (seq from 1), kept apart
  // from the default room's (which resume and replay are about).
  onPlaceEvent(message, seqKey) {
    const fresh = message.seq > (this.placeSeqs.get(seqKey) ?? 0);
    if (message.type === "message" && message.name === this.name) this.acknowledge(message, fresh);
    if (!fresh) return false;
    this.placeSeqs.set(seqKey, message.seq);
    return true;
  }

  // `entered` `room` at `seq`: its events come after it.
  entered(room, seq) {
    const seqKey = roomKey(room);
    this.placeSeqs.set(seqKey, Math.max(this.placeSeqs.get(seqKey) ?? 0, seq));
  }

  finishReplayIfDone() {
    const replay = this.replay;
    if (replay !== null && (replay.left <= 0 || this.lastSeq >= replay.until)) {
      this.lastSeq = Math.max(this.lastSeq, replay.until);
      this.replay = null;
    }
  }

  refused(id) {
    const index = this.unacknowledged.findIndex((entry) => entry.id === id);
    if (index >= 0) this.unacknowledged.splice(index, 1);
  }

  acknowledge(echo, byText) {
    const hasId = typeof echo.id === "string";
    const index = this.unacknowledged.findIndex(
      (entry) => (hasId && entry.id === echo.id) || (!hasId && byText && entry.text === echo.text),
    );
    if (index >= 0) this.unacknowledged.splice(index, 1);
  }

  // A new message going out now: it gets an id and waits for its echo. `where`: {room} or {to}
  // (none: the default room), kept with it so that a resend goes where it went.
  sent(text, where = null) {
    const entry = { id: this.ids.next().value, text, ...where };
    this.unacknowledged.push(entry);
    return entry;
  }

  // A line typed while disconnected: kept for later, or null when MAX_WAITING already wait.
  queue(text, where = null) {
    if (this.waiting.length >= MAX_WAITING) return null;
    const entry = { id: this.ids.next().value, text, ...where };
    this.waiting.push(entry);
    return entry;
  }

  // Everything to send on a new membership, in order: the unacknowledged, then what waited.
  linesToResend() {
    this.unacknowledged.push(...this.waiting);
    this.waiting = [];
    return [...this.unacknowledged];
  }

  isUnacknowledged(entry) {
    return this.unacknowledged.includes(entry);
  }

  // Not echoed yet, in the order they were typed.
  get pending() {
    return [...this.unacknowledged, ...this.waiting];
  }
}

// --- where the session stands (chat_client/link_state.py) -----------------------------

// An operation the Link cannot carry out in its state: a bug in the caller (chat_client.errors.InvalidState).
export class InvalidState extends Error {
  constructor(operation, state) {
    super(`cannot ${operation} in state ${state}`);
    this.name = "InvalidState";
    this.operation = operation;
    this.state = state;
  }
}

export const LinkState = Object.freeze({
  IDLE: "idle", // made, not started
  ENTERING: "entering", // the first connection, until the first welcome
  REPLAYING: "replaying", // in the room on a connection: the events missed meanwhile are arriving
  RESENDING: "resending", // the replay is in: what is owed goes again; lines typed meanwhile wait
  LIVE: "live", // everything owed was sent again: a new line goes out at once
  WAITING: "waiting", // the connection was lost: backing off before the next attempt
  CONNECTING: "connecting", // an attempt: the WebSocket, hello, the password
  RESUMING: "resuming", // `resume` sent, its answer awaited
  JOINING: "joining", // a fresh `join` (no token, or the resume refused), until its welcome
  ENDED: "ended", // over: left, removed, refused, or given up
});

export const LinkEvent = Object.freeze({
  START: "start",
  JOIN: "join",
  WELCOME: "welcome",
  REPLAYED: "replayed",
  RESENT: "resent",
  LOST: "lost",
  RECONNECT: "reconnect",
  RESUME: "resume",
  RESUMED: "resumed",
  END: "end",
});

const S = LinkState;
const E = LinkEvent;

// state -> {event: next state}; an event missing from a state's row is an error in that state.
export const TRANSITIONS = Object.freeze({
  [S.IDLE]: { [E.START]: S.ENTERING },
  // The page joins from ENTERING, again after a refused name; the terminal client's `enter` does it unseen.
  [S.ENTERING]: { [E.JOIN]: S.ENTERING, [E.WELCOME]: S.REPLAYING, [E.END]: S.ENDED },
  [S.REPLAYING]: { [E.REPLAYED]: S.RESENDING, [E.LOST]: S.WAITING, [E.END]: S.ENDED },
  [S.RESENDING]: { [E.RESENT]: S.LIVE, [E.LOST]: S.WAITING, [E.END]: S.ENDED },
  [S.LIVE]: { [E.LOST]: S.WAITING, [E.END]: S.ENDED },
  [S.WAITING]: { [E.RECONNECT]: S.CONNECTING, [E.END]: S.ENDED },
  [S.CONNECTING]: { [E.RESUME]: S.RESUMING, [E.JOIN]: S.JOINING, [E.LOST]: S.WAITING, [E.END]: S.ENDED },
  [S.RESUMING]: { [E.RESUMED]: S.REPLAYING, [E.JOIN]: S.JOINING, [E.LOST]: S.WAITING, [E.END]: S.ENDED },
  [S.JOINING]: { [E.JOIN]: S.JOINING, [E.WELCOME]: S.REPLAYING, [E.LOST]: S.WAITING, [E.END]: S.ENDED },
  [S.ENDED]: { [E.END]: S.ENDED },
});

// Where the session stands; fire() moves it by the table or throws InvalidState.
export class LinkMachine {
  constructor() {
    this.current = S.IDLE;
  }

  get state() {
    return this.current;
  }

  fire(event) {
    const moved = Object.hasOwn(TRANSITIONS[this.current], event) ? TRANSITIONS[this.current][event] : undefined;
    if (moved === undefined) throw new InvalidState(event, this.current);
    this.current = moved;
    return moved;
  }
}

// --- membership: what was missed, and how far the member has read (protocol.md#membership) ---

export const HISTORY_PAGE = 500; // the most one `history` answer carries (chat_protocol.MAX_HISTORY_PAGE)
export const OLDER_PAGE = 100; // scrolling up asks for this many at a time

// The events missed between a returning member's read position and her welcome, fetched
// page by page with `history` while live events go on arriving. The welcome's seq is her
// own coming back: everything missed is before it, everything live after it.
export class Backlog {
  constructor(welcome) {
    this.unread = welcome.unread || 0;
    this.covered = welcome.read ?? welcome.seq; // the last seq fetched (or known not to be there)
    this.until = welcome.seq - 1;
    this.seen = new Set();
    this.asked = false;
  }

  get done() {
    return this.unread === 0 || this.covered >= this.until;
  }

  // The next `history` frame to send, or null when all is fetched or one is on its way.
  request() {
    if (this.done || this.asked) return null;
    this.asked = true;
    return { type: "history", after: this.covered, limit: HISTORY_PAGE };
  }

  // A new connection: an answer that was on its way is lost, so the next request asks again.
  reconnected() {
    this.asked = false;
  }

  // A `history_page` in: {events, gone} to show, each once, oldest first, none from the live part.
  onPage(page) {
    this.asked = false;
    const events = page.events.filter((event) => event.seq <= this.until && !this.seen.has(event.seq));
    for (const event of events) this.seen.add(event.seq);
    const stalled = page.last <= this.covered; // no step forward: asking again would loop, so stop
    this.covered = stalled ? this.until : Math.max(this.covered, Math.min(page.last, this.until));
    const gone = page.gone ? [page.gone[0], Math.min(page.gone[1], this.until)] : null;
    return { events, gone: gone && gone[0] <= gone[1] ? gone : null };
  }
}

// How far the member has read: the highest seq such that every event shown up to it has
// scrolled into view, and never into what is still being fetched. `due()` gives the
// position to send with `read` when it moved, at most once per `interval` ms.
export class ReadPosition {
  constructor(start, interval = 1000, now = () => performance.now()) {
    this.sent = start;
    this.maxSeen = start;
    this.unseen = new Set();
    this.limit = null; // while the backlog is fetched: the last seq it covers
    this.interval = interval;
    this.now = now;
    this.sentAt = -Infinity;
  }

  shown(seq) {
    if (seq > this.sent) this.unseen.add(seq);
  }

  seen(seq) {
    this.unseen.delete(seq);
    this.maxSeen = Math.max(this.maxSeen, seq);
  }

  // The backlog covers up to `seq` so far (null: all of it is in).
  fetchedUpTo(seq) {
    this.limit = seq;
  }

  get position() {
    let position = this.maxSeen;
    for (const seq of this.unseen) if (seq <= position) position = seq - 1;
    if (this.limit !== null) position = Math.min(position, this.limit);
    return Math.max(position, this.sent);
  }

  // The seq to send now, or null (nothing new, or one was sent less than `interval` ago unless forced).
  due(force = false) {
    const position = this.position;
    if (position <= this.sent) return null;
    if (!force && this.now() - this.sentAt < this.interval) return null;
    return position;
  }

  // `read` `seq` went out.
  sentUpTo(seq) {
    this.sent = Math.max(this.sent, seq);
    this.sentAt = this.now();
    for (const shown of this.unseen) if (shown <= this.sent) this.unseen.delete(shown);
  }

  // Milliseconds until due() may send again (0: now).
  get wait() {
    return Math.max(0, this.interval - (this.now() - this.sentAt));
  }
}

// "alpha is online" / "alpha is offline": a registered member's presence event.
export function presenceText(event) {
  return `${safe(event.name)} is ${event.online ? "online" : "offline"}`;
}

// "last seen 14:05" today, "last seen 3 Dec" another day: `when` an ISO time, `now` a Date.
export function lastSeenText(when, now = new Date()) {
  if (!when) return "offline";
  const moment = new Date(when);
  if (Number.isNaN(moment.getTime())) return "offline";
  const sameDay = moment.toDateString() === now.toDateString();
  const text = sameDay
    ? moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
    : moment.toLocaleDateString([], { day: "numeric", month: "short" });
  return `last seen ${text}`;
}

// "3 unread" / "1 unread since you were last here": the divider above what was missed.
export function unreadText(count) {
  return `${count} unread since you were last here`;
}

// --- devices: this browser's token for each account (protocol.md#devices) ----------------

export const MAX_DEVICE_LABEL_CHARS = 64; // the tracker's limit on a join's `device`

const BROWSERS = [
  [/Edg(?:e|A|iOS)?\/(\d+)/, "Edge"],
  [/OPR\/(\d+)/, "Opera"],
  [/Firefox\/(\d+)/, "Firefox"],
  [/Chromium\/(\d+)/, "Chromium"],
  [/Chrome\/(\d+)/, "Chrome"],
  [/Version\/(\d+)[.\d]* (?:Mobile\/\S+ )?Safari\//, "Safari"],
];
const SYSTEMS = [
  [/Android/, "Android"],
  [/iPhone|iPad|iPod/, "iOS"],
  [/CrOS/, "ChromeOS"],
  [/Windows/, "Windows"],
  [/Mac OS X|Macintosh/, "macOS"],
  [/Linux/, "Linux"],
];

// "browser: Chrome 120 on Linux": how the Devices list names this browser (a user agent we cannot
// read is kept as it is), at most MAX_DEVICE_LABEL_CHARS characters.
export function deviceLabel(userAgent) {
  const agent = String(userAgent ?? "").trim();
  const browser = BROWSERS.find(([pattern]) => pattern.test(agent));
  const system = SYSTEMS.find(([pattern]) => pattern.test(agent));
  let short = agent || "unknown";
  if (browser) short = `${browser[1]} ${agent.match(browser[0])[1]}${system ? ` on ${system[1]}` : ""}`;
  return Array.from(`browser: ${short}`).slice(0, MAX_DEVICE_LABEL_CHARS).join("");
}

export const DEVICE_TOKENS_KEY = "groupchat.device-tokens";

// The device token of each account this browser signed in to, in `storage` (the page gives it
// localStorage: one per tracker origin), keyed by nameKey so a lookalike finds its account. Each
// entry is {name, device, token}; the last one kept is what the name form offers first. A
// storage the browser refuses (private mode, quota) is a browser that keeps no token.
export class DeviceTokens {
  constructor(storage) {
    this.storage = storage;
  }

  get(name) {
    if (!name) return null;
    return this.all().accounts[nameKey(name)] ?? null;
  }

  // The account whose token was kept last (its name), or null.
  get lastName() {
    const { accounts, last } = this.all();
    return accounts[last]?.name ?? null;
  }

  keep(name, device, token) {
    if (!name || !token) return;
    const kept = this.all();
    kept.accounts[nameKey(name)] = { name, device: device ?? null, token };
    kept.last = nameKey(name);
    this.save(kept);
  }

  forget(name) {
    const kept = this.all();
    const key = nameKey(name);
    if (!(key in kept.accounts)) return;
    delete kept.accounts[key];
    if (kept.last === key) kept.last = null;
    this.save(kept);
  }

  all() {
    try {
      const stored = JSON.parse(this.storage?.getItem(DEVICE_TOKENS_KEY) ?? "null");
      if (stored && typeof stored.accounts === "object" && stored.accounts !== null) return stored;
    } catch {
      // unreadable or refused: as if nothing were kept
    }
    return { accounts: {}, last: null };
  }

  save(kept) {
    try {
      this.storage?.setItem(DEVICE_TOKENS_KEY, JSON.stringify(kept));
    } catch {
      // refused: this browser signs in with the passphrase next time
    }
  }
}

// "Chrome 120 on Linux · last seen 14:05 · this device": one line of the Devices list.
export function deviceText(device, thisDevice, now = new Date()) {
  const parts = [safe(device.label || "unnamed device"), lastSeenText(device.last_seen, now)];
  if (thisDevice) parts.push("this device");
  return parts.join(" · ");
}

// --- rooms and direct messages (chat_protocol/rooms.py, protocol.md#rooms-and-direct-messages) ---

export const DEFAULT_ROOM = "#general"; // the default room's name until the tracker's room_list says
const ROOM_PATTERN = /^#[a-z0-9_-]{1,32}$/;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const ROOM_LOOKALIKES = new Map([["0", "o"], ["1", "l"], ["i", "l"]]);

// rooms.room_name: `text` as a room's name ("#" added if missing, lower case), or null if it is none.
export function roomName(text) {
  let candidate = String(text).trim().toLowerCase();
  if (!candidate.startsWith("#")) candidate = `#${candidate}`;
  return ROOM_PATTERN.test(candidate) ? candidate : null;
}

// rooms.room_key: names with one key are one room (#DEV is #dev, #ci is #cl); separators stay.
export function roomKey(name) {
  let key = "";
  for (const char of name.toLowerCase()) key += ROOM_LOOKALIKES.get(char) ?? char;
  return key;
}

// A place is where the page shows events: the default room, another room, or a conversation
// with one person. Its key tells them apart: "default", the room key ("#dev"), "@<name key>".
export const DEFAULT_PLACE = "default";

export function roomPlace(name) {
  return { key: roomKey(name), kind: "room", name };
}

export function directPlace(name) {
  return { key: `@${nameKey(name)}`, kind: "direct", name };
}

export function defaultPlace(name = DEFAULT_ROOM) {
  return { key: DEFAULT_PLACE, kind: "room", name };
}

// The memory's key of an event's order: a room's, a conversation's (its two names), or null for the default room's.
function placeSeqKey(event) {
  if (typeof event.to === "string") return `@${[nameKey(event.name ?? ""), nameKey(event.to)].sort().join("+")}`;
  if (typeof event.room === "string") return roomKey(event.room);
  return null;
}

// Where an event goes: a direct message to the conversation with the other person (the sender
// if it is not `me`, else whom it was to); an event with `room` to that room; any other to the
// default room (whose events carry no room, also when `defaultName` names it).
export function placeOf(event, me, defaultName = DEFAULT_ROOM) {
  if (typeof event.to === "string") {
    return directPlace(nameKey(event.name ?? "") === nameKey(me) ? event.to : event.name);
  }
  if (typeof event.room === "string" && roomKey(event.room) !== roomKey(defaultName)) return roomPlace(event.room);
  return defaultPlace(defaultName);
}

// What a message typed in `place` carries besides its text: nothing in the default room.
export function destination(place) {
  if (place.kind === "direct") return { to: place.name };
  if (place.key === DEFAULT_PLACE) return null;
  return { room: place.name };
}

// The URL fragment of a place: none for the default room, "#room=dev" for #dev, "#dm=bob" for a
// conversation with bob. Neither "room=" nor "dm=" is a fragment anything else of the page uses.
export function fragmentOf(place) {
  if (place.key === DEFAULT_PLACE) return "";
  if (place.kind === "direct") return `#dm=${encodeURIComponent(place.name)}`;
  return `#room=${encodeURIComponent(place.name.slice(1))}`;
}

// The place a fragment names (its key and name), or null for none or one that names nothing valid.
export function placeFromFragment(hash, defaultName = DEFAULT_ROOM) {
  const match = /^#?(room|dm)=(.*)$/.exec(String(hash));
  if (match === null) return null;
  let value;
  try {
    value = decodeURIComponent(match[2]);
  } catch {
    return null;
  }
  if (match[1] === "dm") return NAME_PATTERN.test(value) ? directPlace(value) : null;
  const name = roomName(value);
  if (name === null) return null;
  return roomKey(name) === roomKey(defaultName) ? defaultPlace(defaultName) : roomPlace(name);
}

// The rooms and conversations the page shows, in the list's order (the default room first, then
// the rooms by name, then the conversations by name), each with its count of unread messages
// (those that arrived while another was shown); one of them is the current one.
export class Places {
  constructor(defaultName = DEFAULT_ROOM) {
    this.entries = new Map([[DEFAULT_PLACE, { ...defaultPlace(defaultName), unread: 0, private: false }]]);
    this.current = DEFAULT_PLACE;
  }

  get defaultName() {
    return this.entries.get(DEFAULT_PLACE).name;
  }

  set defaultName(name) {
    this.entries.get(DEFAULT_PLACE).name = name;
  }

  get(key) {
    return this.entries.get(key) ?? null;
  }

  has(key) {
    return this.entries.has(key);
  }

  // The entry of `place`, added (with no unread) if it is not listed yet.
  add(place) {
    if (!this.entries.has(place.key)) this.entries.set(place.key, { ...place, unread: 0, private: false });
    return this.entries.get(place.key);
  }

  // Gone from the list (the default room never is); true if it was the current one, which is then the default room.
  remove(key) {
    if (key === DEFAULT_PLACE || !this.entries.delete(key)) return false;
    if (this.current !== key) return false;
    this.current = DEFAULT_PLACE;
    return true;
  }

  // Show `key`: its messages are read from now on. False if it is not listed.
  select(key) {
    const entry = this.entries.get(key);
    if (!entry) return false;
    entry.unread = 0;
    this.current = key;
    return true;
  }

  get selected() {
    return this.entries.get(this.current);
  }

  // An event reached `place` (added if new); `counts`: a message from someone else. True if its unread count grew.
  arrived(place, counts) {
    const entry = this.add(place);
    if (!counts || place.key === this.current) return false;
    entry.unread += 1;
    return true;
  }

  setUnread(key, count) {
    const entry = this.entries.get(key);
    if (entry && key !== this.current) entry.unread = Math.max(0, count || 0);
  }

  // Every entry, in the list's order.
  list() {
    const rank = (entry) => (entry.key === DEFAULT_PLACE ? 0 : entry.kind === "room" ? 1 : 2);
    return [...this.entries.values()].sort((a, b) => rank(a) - rank(b) || a.key.localeCompare(b.key));
  }
}

// "#dev · 3 members, 2 online · private": one room of a room_list.
export function roomInfoText(info) {
  const parts = [safe(info.room), `${info.members} member${info.members === 1 ? "" : "s"}, ${info.online} online`];
  if (info.private) parts.push("private");
  if (info.joined) parts.push("joined");
  return parts.join(" · ");
}

// The page's room commands: /join #room [private], /part [#room], /rooms, /invite NAME [#room],
// /remove NAME [#room] (the room's owner), /msg NAME text. {action, room, name, text, private, problem}; null for a line that is none of them.
export function parseRoomCommand(line) {
  const stripped = line.trim();
  const [word, ...words] = stripped.split(/\s+/);
  const command = word.toLowerCase();
  if (command === "/rooms") return { action: "rooms" };
  if (command === "/join") {
    const room = words.length ? roomName(words[0]) : null;
    if (room === null) return { action: "join", problem: "/join needs a room's name: '#' and 1-32 of a-z 0-9 _ -" };
    return { action: "join", room, private: words[1]?.toLowerCase() === "private" };
  }
  if (command === "/part" && words.length) {
    const room = roomName(words[0]);
    return room === null ? { action: "part", problem: "/part #room: not a room's name" } : { action: "part", room };
  }
  if (command === "/invite" || command === "/remove") {
    const action = command.slice(1);
    if (!words.length || !NAME_PATTERN.test(words[0])) return { action, problem: `${command} NAME [#room]` };
    const room = words.length > 1 ? roomName(words[1]) : null;
    if (words.length > 1 && room === null) return { action, problem: `${command} NAME #room: not a room's name` };
    return { action, name: words[0], room };
  }
  if (command === "/msg") {
    const match = /^\S+\s+(\S+)\s(.*)$/s.exec(line.trimStart());
    if (match === null || !NAME_PATTERN.test(match[1]) || !match[2].trim()) return { action: "msg", problem: "/msg NAME text" };
    return { action: "msg", name: match[1], text: match[2] };
  }
  return null;
}
