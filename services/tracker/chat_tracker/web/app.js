// The page: the password and name forms, the room (messages, who is online, the input),
// and what keeps it usable (following the newest message, the unread count in the
// title, notifications on a mention). Everything a peer controls is put in the page
// with textContent, never as HTML; the Content-Security-Policy forbids innerHTML anyway.

import { Link } from "./link.js";
import {
  Backlog,
  DEFAULT_PLACE,
  DeviceTokens,
  HELP,
  HISTORY_PAGE,
  LEAVE_REASONS,
  OLDER_PAGE,
  Places,
  ReadPosition,
  colourIndex,
  defaultPlace,
  destination,
  deviceLabel,
  deviceText,
  directPlace,
  fragmentOf,
  hasLoneSurrogate,
  lastSeenText,
  length,
  mentions,
  nameKey,
  parseCommand,
  parseRoomCommand,
  passphraseProblem,
  placeFromFragment,
  placeOf,
  presenceText,
  roomInfoText,
  roomName,
  roomPlace,
  safe,
  unreadText,
} from "./logic.js";

const $ = (id) => document.getElementById(id);
const TITLE = document.title;
const FOLLOW_SLACK_PX = 40; // this close to the bottom counts as "at the newest message"

const page = {
  link: null,
  me: "",
  registered: false, // signed in to (or registered) an account: history and read are ours to use
  members: new Map(), // name -> {online, away, lastSeen}; offline ones are registered members
  unread: 0,
  unseen: 0,
  backlog: null, // what was missed since the read position, being fetched (logic.js Backlog)
  missedEnd: null, // the line after the missed events: they are inserted before it
  olderAnchor: null, // the line older pages are inserted after
  oldest: 0, // the lowest seq the page covers: scrolling up asks for what is before it
  historyAsked: [], // per `history` sent on this connection, oldest first: "missed" or "older"
  reading: null, // how far the member has read (logic.js ReadPosition)
  readTimer: null,
  observer: null, // sees lines scroll into view
  signingOut: null, // the id of this device while its own sign-out is on its way
  tokens: new DeviceTokens(browserStorage()), // this browser's device token per account (docs/web.md#devices)
  places: new Places(), // the default room, the other rooms, the conversations (docs/web.md#rooms)
  views: new Map(), // place key -> {log, members, reading, readTimer, observer} of every place but the default room
  wanted: null, // the place the URL fragment (or a /join) asked for, selected once it is there
  directoryWanted: false, // the person asked for the public rooms: show the room_list that answers
};

// localStorage, or null where the browser refuses it (storage disabled): then no token is kept.
function browserStorage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

// --- small DOM helpers -------------------------------------------------------------

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function show(id) {
  for (const step of ["password-form", "name-form", "room"]) $(step).hidden = step !== id;
}

function clock(ts) {
  const moment = ts ? new Date(ts) : new Date();
  const time = element("time", "time", moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }));
  time.dateTime = moment.toISOString();
  time.title = moment.toLocaleString();
  return time;
}

function nameTag(name) {
  // <bdi>: a right-to-left name cannot reorder the rest of the line.
  return element("bdi", `name c${colourIndex(name)}`, safe(name));
}

function setStatus(text, offerReconnect = false) {
  $("status").textContent = text;
  $("reconnect").hidden = !offerReconnect;
}

// --- the log -----------------------------------------------------------------------

function atBottom(log = currentLog()) {
  return log.scrollHeight - log.scrollTop - log.clientHeight <= FOLLOW_SLACK_PX;
}

// The log of a place (the default room's is #log); the shown one.
function logOf(key) {
  return key === DEFAULT_PLACE ? $("log") : (page.views.get(key)?.log ?? $("log"));
}

function currentLog() {
  return logOf(page.places.current);
}

// A line at the end of a place's log (the shown one unless `key` names another).
function append(line, { counts = false, key = page.places.current } = {}) {
  observe(line, key);
  const log = logOf(key);
  const following = atBottom(log);
  log.append(line);
  if (following) {
    log.scrollTop = log.scrollHeight;
  } else if (counts && key === page.places.current) {
    page.unseen += 1;
    const button = $("new-messages");
    button.textContent = page.unseen === 1 ? "1 new message" : `${page.unseen} new messages`;
    button.hidden = false;
  }
  if (counts && document.visibilityState === "hidden") {
    page.unread += 1;
    document.title = `(${page.unread}) ${TITLE}`;
  }
}

function noticeLine(text, ts = null, className = "notice") {
  const line = element("li", `line ${className}`);
  line.append(clock(ts), element("span", "text", `* ${text}`));
  return line;
}

function notice(text, ts = null, className = "notice") {
  append(noticeLine(text, ts, className));
}

function problem(text) {
  const line = element("li", "line error");
  line.append(clock(null), element("span", "text", `! ${text}`));
  append(line);
}

function messageLine(message, own) {
  const line = element("li", "line message");
  if (own) line.classList.add("own");
  if (!own && mentions(message.text, page.me)) line.classList.add("mention");
  line.append(clock(message.ts), nameTag(message.name), element("span", "sep", ": "));
  line.append(element("bdi", "text", safe(message.text)));
  return line;
}

// The line an event with a seq is shown as (live, or from history), or null for an unknown type.
function eventLine(message) {
  let line = null;
  if (message.type === "message") line = messageLine(message, message.name === page.me);
  else if (message.type === "joined") line = noticeLine(`${safe(message.name)} joined`, message.ts);
  else if (message.type === "left") line = noticeLine(leftText(message), message.ts);
  else if (message.type === "presence") line = noticeLine(presenceText(message), message.ts, "notice presence");
  else if (message.type === "moderation") line = noticeLine(moderationText(message), message.ts);
  else if (message.type === "announcement") line = noticeLine(`Announcement: ${safe(message.text)}`, message.ts);
  if (line !== null) line.dataset.seq = String(message.seq);
  return line;
}

function leftText(message) {
  if (message.room && message.reason === "part") return `${safe(message.name)} left`; // the room, not the chat
  return `${safe(message.name)} left${LEAVE_REASONS[message.reason] ?? ` (${safe(message.reason)})`}`;
}

function names(list) {
  return `(${list.length}): ${list.map(safe).join(", ")}`;
}

// --- who is online -----------------------------------------------------------------

function memberItem(name, member) {
  const item = element("li", member.online ? (member.away ? "member away" : "member") : "member offline");
  if (name === page.me) {
    item.append(nameTag(name));
  } else {
    // A name in the list opens the conversation with her.
    const button = element("button", "member-name");
    button.type = "button";
    button.title = `Direct message to ${safe(name)}`;
    button.append(nameTag(name));
    button.addEventListener("click", () => openDirect(name));
    item.append(button);
  }
  if (name === page.me) item.append(element("span", "tag", " (you)"));
  if (member.online && member.away) item.append(element("span", "tag", " away"));
  if (!member.online) item.append(element("span", "tag", ` ${lastSeenText(member.lastSeen)}`));
  return item;
}

function renderMembers() {
  const sorted = [...currentMembers()].sort(([a], [b]) => nameKey(a).localeCompare(nameKey(b)));
  const online = sorted.filter(([, member]) => member.online);
  const offline = sorted.filter(([, member]) => !member.online);
  $("members").replaceChildren(...online.map(([name, member]) => memberItem(name, member)));
  $("offline-members").replaceChildren(...offline.map(([name, member]) => memberItem(name, member)));
  $("online-count").textContent = `(${online.length})`;
  $("offline-count").textContent = `(${offline.length})`;
  $("offline").hidden = offline.length === 0;
}

// Entries from `who` (or names from a welcome, all online): the offline ones are registered members.
function setMembers(entries) {
  page.members = memberMap(entries);
  renderMembers();
}

function memberMap(entries) {
  return new Map(
    entries.map((entry) =>
      typeof entry === "string"
        ? [entry, { online: true, away: false, lastSeen: null }]
        : [entry.name, { online: entry.online !== false, away: Boolean(entry.away), lastSeen: entry.last_seen ?? null }],
    ),
  );
}

// A live event's change to the member list. Her own presence is not: this page is here, whatever
// another of her connections did (on replicas one going offline is logged while this one stays).
function membersChanged(message, members = page.members) {
  if (message.type === "presence" && message.name === page.me) return;
  if (message.type === "joined" || (message.type === "presence" && message.online)) {
    members.set(message.name, { online: true, away: false, lastSeen: null });
  } else if (message.type === "presence") {
    members.set(message.name, { online: false, away: false, lastSeen: message.ts });
  } else if (message.type === "left") {
    members.delete(message.name);
  } else {
    return;
  }
  renderMembers();
}

// --- membership: what was missed, older history, the read position ---------------------

// A registered member (or not): only she has history, a read position and "Leave for good".
function becameMember(registered) {
  page.registered = registered;
  $("part").hidden = !registered;
  $("devices").hidden = !registered;
  if (!registered) $("part-form").hidden = true;
  if (!registered) $("devices-panel").hidden = true;
  if (!registered) return;
  scheduleRead();
  if (page.olderAnchor === null) {
    page.olderAnchor = element("li", "line older-anchor");
    const button = element("button", "older", "Earlier messages");
    button.type = "button";
    button.addEventListener("click", askOlder);
    page.olderAnchor.append(button);
    $("log").prepend(page.olderAnchor);
  }
}

// A welcome with `unread`: a divider says how many, and the missed events are fetched under it.
// Joining again after a lost session (`missedAfter`: the last seq this page has) fetches from
// there, or from the read position if it is further on: nothing this page shows comes twice.
function startBacklog(welcome, missedAfter) {
  page.backlog = null;
  page.missedEnd = null;
  if (!welcome.registered) return;
  const read = Math.max(welcome.read ?? 0, missedAfter ?? 0);
  const unread = missedAfter === null ? welcome.unread || 0 : Number(welcome.seq - 1 > read);
  if (!unread) return;
  page.backlog = new Backlog({ seq: welcome.seq, read, unread });
  const text = missedAfter === null ? unreadText(unread) : "what was said while this page was disconnected";
  const divider = noticeLine(text, welcome.ts, "notice unread-divider");
  divider.id = "unread-divider";
  page.missedEnd = noticeLine("fetching what you missed...", welcome.ts, "notice missed-end");
  append(divider, { key: DEFAULT_PLACE });
  append(page.missedEnd, { key: DEFAULT_PLACE });
  page.reading.fetchedUpTo(page.backlog.covered);
}

function askHistory(kind, frame) {
  if (frame === null || !page.link.request(frame)) return false;
  page.historyAsked.push(kind);
  return true;
}

function fetchMissed() {
  if (page.backlog && !page.historyAsked.includes("missed")) askHistory("missed", page.backlog.request());
}

function missedPage(history) {
  const backlog = page.backlog;
  if (!backlog) return;
  const { events, gone } = backlog.onPage(history);
  const lines = events.map(eventLine).filter((line) => line !== null);
  if (gone) lines.unshift(noticeLine(`events ${gone[0]}-${gone[1]} are no longer kept and were missed`, null, "notice gone"));
  insertKeepingView(() => page.missedEnd.before(...lines));
  for (const line of lines) observe(line);
  if (backlog.done) {
    page.missedEnd.querySelector(".text").textContent = "* that is everything you missed; live from here";
    page.reading.fetchedUpTo(null);
    page.backlog = null;
  } else {
    page.reading.fetchedUpTo(backlog.covered);
    fetchMissed();
  }
}

// Scrolled to the top: the page before the oldest one shown (registered members only).
function askOlder() {
  if (!page.registered || page.oldest <= 1 || page.historyAsked.includes("older")) return;
  askHistory("older", { type: "history", before: page.oldest, limit: OLDER_PAGE });
}

function olderPage(history) {
  if (history.last < history.first) {
    page.oldest = 1; // nothing before: the beginning of what is kept
  } else {
    page.oldest = Math.min(page.oldest, history.first);
  }
  const lines = history.events.map(eventLine).filter((line) => line !== null);
  if (history.gone) lines.unshift(noticeLine(`events ${history.gone[0]}-${history.gone[1]} are no longer kept`, null, "notice gone"));
  if (page.oldest <= 1) page.olderAnchor.replaceChildren(element("span", "text", "* the beginning of the conversation"));
  insertKeepingView(() => page.olderAnchor.after(...lines));
}

// Lines inserted above what is on screen must not move it.
function insertKeepingView(insert, log = $("log")) {
  const following = atBottom(log);
  const before = log.scrollHeight;
  insert();
  log.scrollTop = following ? log.scrollHeight : log.scrollTop + (log.scrollHeight - before);
}

function observe(line, key = DEFAULT_PLACE) {
  const seq = Number(line.dataset.seq);
  if (!seq) return;
  if (key !== DEFAULT_PLACE) {
    observeInPlace(line, seq, key);
    return;
  }
  if (page.reading === null) return;
  page.reading.shown(seq);
  page.observer.observe(line);
}

function linesSeen(entries) {
  for (const entry of entries) {
    const tall = entry.boundingClientRect.height > (entry.rootBounds?.height ?? Infinity) / 2;
    if (!entry.isIntersecting || (entry.intersectionRatio < 0.5 && !tall)) continue;
    page.observer.unobserve(entry.target);
    if (page.reading) page.reading.seen(Number(entry.target.dataset.seq));
  }
  scheduleRead();
}

// `read` at most once per ReadPosition interval, for the highest seq seen with nothing unseen below it.
function scheduleRead() {
  if (!page.registered || page.reading === null || page.readTimer !== null) return;
  if (page.reading.due(true) === null) return;
  page.readTimer = setTimeout(() => {
    page.readTimer = null;
    flushRead(false);
  }, page.reading.wait);
}

function flushRead(force) {
  if (!page.registered || page.reading === null || !page.link) return;
  const seq = page.reading.due(force);
  if (seq === null) {
    scheduleRead(); // a timer may fire a hair early: wait out the rest of the interval
    return;
  }
  if (!page.link.request({ type: "read", seq })) return; // not connected: the next live() tries again
  page.reading.sentUpTo(seq);
  scheduleRead();
}

// --- rooms and conversations (docs/web.md#rooms) ----------------------------------------

// The view of a place other than the default room, made (with its own log, hidden) on first use.
function placeView(place) {
  const known = page.views.get(place.key);
  if (known) return known;
  const log = element("ol", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-label", `Messages in ${placeLabel(place)}`);
  log.tabIndex = 0;
  log.hidden = true;
  log.dataset.place = place.key;
  log.addEventListener("scroll", scrolled, { passive: true });
  $("new-messages").before(log);
  const view = { log, members: new Map(), reading: null, readTimer: null, observer: null, entered: null, missedUntil: 0 };
  view.observer = new IntersectionObserver((entries) => placeLinesSeen(place.key, entries), {
    root: log,
    threshold: [0, 0.5, 1],
  });
  page.views.set(place.key, view);
  page.places.add(place);
  renderPlaces();
  return view;
}

function placeLabel(place) {
  return place.kind === "direct" ? `@${safe(place.name)}` : safe(place.name);
}

// Who the member list shows: the room's members; in a conversation, the default room's (to pick another).
function currentMembers() {
  const key = page.places.current;
  if (key === DEFAULT_PLACE || page.places.selected.kind === "direct") return page.members;
  return page.views.get(key)?.members ?? page.members;
}

function placeMembersChanged(place, message) {
  if (place.kind !== "room") return;
  const view = page.views.get(place.key);
  if (view) membersChanged(message, view.members);
}

function renderPlaces() {
  const items = page.places.list().map((entry) => {
    const button = element("button", `place-button ${entry.kind}`);
    button.type = "button";
    button.append(element("span", "place-name", placeLabel(entry)));
    // The spaces keep the button's accessible name readable ("#dev private 2"); flex layout ignores them.
    if (entry.private) button.append(" ", element("span", "tag", "private"));
    if (entry.unread) {
      const badge = element("span", "badge", String(entry.unread));
      badge.title = `${entry.unread} unread`;
      button.append(" ", badge);
    }
    if (entry.key === page.places.current) button.setAttribute("aria-current", "page");
    button.addEventListener("click", () => selectPlace(entry.key));
    const item = element("li", "place");
    item.dataset.place = entry.key;
    item.append(button);
    return item;
  });
  $("place-list").replaceChildren(...items);
}

// Show a place: its log, its members, its name in the bar and in the URL fragment.
function selectPlace(key, { fragment = true } = {}) {
  if (!page.places.select(key)) return;
  const place = page.places.selected;
  const shown = logOf(key);
  for (const log of document.querySelectorAll("ol.log")) log.hidden = log !== shown;
  shown.scrollTop = shown.scrollHeight;
  page.unseen = 0;
  $("new-messages").hidden = true;
  $("place-title").textContent = placeLabel(place);
  const otherRoom = place.kind === "room" && key !== DEFAULT_PLACE;
  $("part-room").hidden = !otherRoom;
  $("invite-form").hidden = !otherRoom;
  $("close-direct").hidden = place.kind !== "direct";
  $("message").placeholder = `Message ${placeLabel(place)}`;
  if (fragment) history.replaceState(null, "", fragmentOf(place) || location.pathname + location.search);
  renderPlaces();
  renderMembers();
}

function openDirect(name) {
  if (nameKey(name) === nameKey(page.me)) {
    roomProblem("that is you");
    return;
  }
  const place = directPlace(name);
  placeView(place);
  selectPlace(place.key);
  $("message").focus();
}

// Enter a room (or show it, when already in): the `entered` that answers selects it.
function joinRoom(name, isPrivate = false) {
  const place = roomPlace(name);
  if (place.key === roomPlace(page.places.defaultName).key) {
    selectPlace(DEFAULT_PLACE);
    return;
  }
  if (page.places.has(place.key)) {
    selectPlace(place.key);
    return;
  }
  page.wanted = place;
  if (!page.link.enter(name, isPrivate)) roomProblem("not connected: try again once the page says Connected");
}

function roomProblem(text) {
  $("room-problem").textContent = text;
}

// The place the URL fragment names: a room is entered (and shown once entered), a conversation opened.
function openWanted() {
  const wanted = page.wanted;
  if (wanted === null) return;
  if (wanted.key === DEFAULT_PLACE || page.places.has(wanted.key)) {
    page.wanted = null;
    selectPlace(wanted.key, { fragment: false });
  } else if (wanted.kind === "direct") {
    page.wanted = null;
    openDirect(wanted.name);
  } else {
    page.link.enter(wanted.name);
  }
}

function fragmentChanged() {
  if (!page.link || !page.me) return;
  page.wanted = placeFromFragment(location.hash, page.places.defaultName) ?? defaultPlace();
  openWanted();
}

// A registered member's welcome lists her other rooms (an `entered` for each follows).
function roomsOfWelcome(rooms) {
  for (const info of rooms) {
    const place = placeOf({ room: info.room }, page.me, page.places.defaultName);
    if (place.key === DEFAULT_PLACE) continue;
    placeView(place);
    page.places.get(place.key).private = Boolean(info.private);
    page.places.setUnread(place.key, info.unread);
  }
  renderPlaces();
}

// A new connection: the rooms she was in ended with the old one (a guest's after a fresh join, anyone's
// after a resume); `join` each again. A registered member's fresh sign-in needs none: the tracker enters them.
function reenterRooms() {
  for (const entry of page.places.list()) {
    if (entry.kind === "room" && entry.key !== DEFAULT_PLACE) page.link.enter(entry.name);
  }
}

function roomEntered(entered) {
  const place = placeOf({ room: entered.room }, page.me, page.places.defaultName);
  if (place.key === DEFAULT_PLACE) return;
  const view = placeView(place);
  const entry = page.places.get(place.key);
  entry.private = Boolean(entered.private);
  view.members = memberMap(entered.members);
  if (page.registered && view.reading === null) view.reading = new ReadPosition(entered.read ?? entered.seq);
  const what = view.entered ? "back in" : "you are in";
  const members = names(entered.members);
  view.entered = noticeLine(`${what} ${safe(entered.room)}${entered.private ? " (private)" : ""}; members ${members}`, entered.ts);
  append(view.entered, { key: place.key });
  if (entered.unread) {
    page.places.setUnread(place.key, entered.unread);
    fetchRoomMissed(entered);
  }
  if (page.wanted !== null && page.wanted.key === place.key) {
    page.wanted = null;
    selectPlace(place.key);
  } else {
    renderPlaces();
    if (page.places.current === place.key) renderMembers();
  }
}

// What a registered member missed in a room while away: one page from her read position, above the live part.
function fetchRoomMissed(entered) {
  const view = page.views.get(placeOf({ room: entered.room }, page.me, page.places.defaultName).key);
  const after = entered.read ?? 0;
  if (!view || entered.seq - 1 <= after) return;
  view.missedUntil = entered.seq - 1;
  page.link.request({ type: "history", room: entered.room, after, limit: HISTORY_PAGE });
}

function roomHistory(history) {
  const place = placeOf({ room: history.room }, page.me, page.places.defaultName);
  const view = page.views.get(place.key);
  if (!view || !view.missedUntil) return;
  const until = view.missedUntil;
  view.missedUntil = 0;
  const shown = new Set([...view.log.querySelectorAll("li[data-seq]")].map((line) => Number(line.dataset.seq)));
  const lines = history.events
    .filter((event) => event.seq <= until && !shown.has(event.seq))
    .map(eventLine)
    .filter((line) => line !== null);
  if (!lines.length) return;
  lines.unshift(noticeLine(unreadText(lines.length), null, "notice unread-divider"));
  // Above the `entered` that announced them: what she missed came before she was back.
  insertKeepingView(() => view.entered.before(...lines), view.log);
  for (const line of lines) observe(line, place.key);
}

function roomParted(parted) {
  const place = roomPlace(parted.room);
  const view = page.views.get(place.key);
  if (view) {
    view.observer.disconnect();
    clearTimeout(view.readTimer);
    view.log.remove();
    page.views.delete(place.key);
  }
  if (page.places.remove(place.key)) selectPlace(DEFAULT_PLACE);
  renderPlaces();
  notice(parted.reason === "removed" ? `you were removed from ${safe(parted.room)}` : `you left ${safe(parted.room)}`);
}

function partRoom(name) {
  if (!page.link.partRoom(name)) problem("not connected: try again once the page says Connected");
}

function closeDirect() {
  const key = page.places.current;
  const view = page.views.get(key);
  if (view) {
    view.observer.disconnect();
    view.log.remove();
    page.views.delete(key);
  }
  if (page.places.remove(key)) selectPlace(DEFAULT_PLACE);
}

// The answer to `rooms`: its first room is the default one (its name, in the list and the bar);
// shown as a list to pick from when the person asked.
function showDirectory(rooms) {
  if (rooms.length) {
    page.places.defaultName = rooms[0].room;
    if (page.places.current === DEFAULT_PLACE) $("place-title").textContent = safe(rooms[0].room);
    renderPlaces();
  }
  if (!page.directoryWanted) return;
  page.directoryWanted = false;
  const items = rooms.map((info) => {
    const item = element("li", "directory-room");
    const button = element("button", "pick-room", info.joined ? "Open" : "Join");
    button.type = "button";
    button.title = `${info.joined ? "Open" : "Join"} ${safe(info.room)}`;
    button.addEventListener("click", () => joinRoom(info.room));
    item.append(element("span", "text", roomInfoText(info)), button);
    return item;
  });
  if (!items.length) items.push(element("li", "directory-room", "no public rooms yet"));
  $("room-directory").replaceChildren(...items);
  $("room-directory").hidden = false;
}

function listRooms() {
  if (!$("room-directory").hidden) {
    $("room-directory").hidden = true;
    return;
  }
  page.directoryWanted = true;
  if (!page.link.listRooms()) {
    page.directoryWanted = false;
    roomProblem("not connected: try again once the page says Connected");
  }
}

// Someone may enter a room now: told in that room (the inviter), or with a button to enter it (the invited).
function invitation(invited) {
  const place = placeOf({ room: invited.room }, page.me, page.places.defaultName);
  if (nameKey(invited.name) !== nameKey(page.me)) {
    append(noticeLine(`${safe(invited.name)} may enter ${safe(invited.room)} now (invited by ${safe(invited.by)})`), {
      key: page.views.has(place.key) ? place.key : page.places.current,
    });
    return;
  }
  const line = noticeLine(`${safe(invited.by)} invited you to ${safe(invited.room)}`);
  const button = element("button", "join-invited", `Join ${safe(invited.room)}`);
  button.type = "button";
  button.addEventListener("click", () => joinRoom(invited.room));
  line.append(button);
  append(line);
}

function inviteEntered(event) {
  event.preventDefault();
  const name = $("invite-name").value.trim();
  const place = page.places.selected;
  if (!name || place.kind !== "room" || place.key === DEFAULT_PLACE) return;
  if (!page.link.invite(place.name, name)) problem("not connected: try again once the page says Connected");
  $("invite-name").value = "";
}

function joinRoomEntered(event) {
  event.preventDefault();
  const name = roomName($("room-name").value);
  if (name === null) {
    roomProblem("A room's name is '#' and 1-32 of a-z 0-9 _ -");
    return;
  }
  roomProblem("");
  joinRoom(name, $("room-private").checked);
  $("room-name").value = "";
  $("room-private").checked = false;
}

function directEntered(event) {
  event.preventDefault();
  const name = $("direct-name").value.trim();
  if (!name) return;
  roomProblem("");
  openDirect(name);
  $("direct-name").value = "";
}

// A room command typed in the message box; false if the line is none.
function roomCommand(line) {
  const command = parseRoomCommand(line);
  if (command === null) return false;
  if (command.problem) problem(command.problem);
  else if (command.action === "rooms") listRooms();
  else if (command.action === "join") joinRoom(command.room, command.private);
  else if (command.action === "part") partRoom(command.room);
  else if (command.action === "msg") {
    openDirect(command.name);
    sendLine(command.text);
  } else {
    roomMemberCommand(command);
  }
  return true;
}

// /invite or /remove NAME [#room]: the room named, else the one shown.
function roomMemberCommand(command) {
  const place = page.places.selected;
  const room = command.room ?? (place.kind === "room" && place.key !== DEFAULT_PLACE ? place.name : null);
  if (room === null) {
    problem(`/${command.action} NAME #room: which room? (or type it in the room's view)`);
    return;
  }
  const sent = command.action === "invite" ? page.link.invite(room, command.name) : page.link.remove(room, command.name);
  if (!sent) problem("not connected: try again once the page says Connected");
}

// A room's read position, as the default room's (registered members only): `read` with `room`.
function observeInPlace(line, seq, key) {
  const view = page.views.get(key);
  if (!view || view.reading === null) return;
  view.reading.shown(seq);
  view.observer.observe(line);
}

function placeLinesSeen(key, entries) {
  const view = page.views.get(key);
  if (!view) return;
  for (const entry of entries) {
    const tall = entry.boundingClientRect.height > (entry.rootBounds?.height ?? Infinity) / 2;
    if (!entry.isIntersecting || (entry.intersectionRatio < 0.5 && !tall)) continue;
    view.observer.unobserve(entry.target);
    if (view.reading) view.reading.seen(Number(entry.target.dataset.seq));
  }
  scheduleRoomRead(key);
}

function scheduleRoomRead(key) {
  const view = page.views.get(key);
  if (!page.registered || !view || view.reading === null || view.readTimer !== null) return;
  if (view.reading.due(true) === null) return;
  view.readTimer = setTimeout(() => {
    view.readTimer = null;
    flushRoomRead(key, false);
  }, view.reading.wait);
}

function flushRoomRead(key, force) {
  const view = page.views.get(key);
  const place = page.places.get(key);
  if (!page.registered || !view || view.reading === null || place === null || !page.link) return;
  const seq = view.reading.due(force);
  if (seq === null) {
    scheduleRoomRead(key);
    return;
  }
  if (!page.link.request({ type: "read", room: place.name, seq })) return;
  view.reading.sentUpTo(seq);
  scheduleRoomRead(key);
}

function startRooms() {
  page.wanted = placeFromFragment(location.hash);
  renderPlaces();
  $("join-room-form").addEventListener("submit", joinRoomEntered);
  $("direct-form").addEventListener("submit", directEntered);
  $("invite-form").addEventListener("submit", inviteEntered);
  $("list-rooms").addEventListener("click", listRooms);
  $("part-room").addEventListener("click", () => partRoom(page.places.selected.name));
  $("close-direct").addEventListener("click", closeDirect);
  window.addEventListener("hashchange", fragmentChanged);
}

// --- notifications (opt-in) --------------------------------------------------------

function notify(message) {
  if (!$("notify").checked || !("Notification" in window) || Notification.permission !== "granted") return;
  if (document.visibilityState === "visible" && document.hasFocus()) return;
  try {
    new Notification(`${safe(message.name)} mentioned you`, { body: safe(message.text), tag: "groupchat-mention" });
  } catch {
    // Some mobile browsers only show notifications from a service worker: the highlight stays.
  }
}

async function notificationsToggled() {
  const box = $("notify");
  if (!box.checked) return;
  if (!("Notification" in window)) {
    box.checked = false;
    problem("this browser has no notifications");
    return;
  }
  const permission = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
  if (permission !== "granted") {
    box.checked = false;
    problem("notifications are blocked for this page in the browser's settings");
  }
}

// --- what the link reports ---------------------------------------------------------

const view = {
  askName() {
    show("name-form");
    setStatus("Password accepted.");
    const known = page.tokens.lastName;
    $("device-hint").hidden = known === null;
    if (known !== null && !$("name").value) $("name").value = known;
    $("name").focus();
  },

  nameRefused(error) {
    show("name-form");
    const signIn = ["passphrase_required", "bad_passphrase", "bad_device_token"].includes(error.code);
    $("passphrase-field").hidden = !signIn;
    $("device-hint").hidden = true;
    $("name-problem").textContent = SIGN_IN_PROBLEMS[error.code] ?? safe(error.message);
    if (signIn) {
      $("passphrase").value = "";
      $("passphrase").focus();
      return;
    }
    $("name").select();
    $("name").focus();
  },

  registered(registered) {
    notice(`${safe(registered.name)} is registered: nobody else can use it, and joining under it takes your passphrase`);
    $("register").hidden = true;
    $("register-form").hidden = true;
    becameMember(true);
  },

  welcome(welcome, first, missedAfter) {
    page.me = welcome.name;
    page.historyAsked = [];
    $("register").hidden = Boolean(welcome.registered);
    setMembers(welcome.members);
    show("room");
    $("message").focus();
    if (first) {
      notice(safe(welcome.greeting || `Welcome, ${welcome.name}.`), welcome.ts);
      notice(`online now ${names(welcome.members)}`, welcome.ts);
      notice("Type a message and press Enter; /who, /help; exit or /quit to leave.");
    } else if (!welcome.registered) {
      reenterRooms(); // a guest's rooms ended with her session
      notice(`joined again as ${safe(welcome.name)}; what was said after seq ${missedAfter} until now was missed`, welcome.ts);
    } else {
      notice(`joined again as ${safe(welcome.name)}`, welcome.ts);
    }
    page.reading = new ReadPosition(welcome.read ?? welcome.seq);
    if (first) page.oldest = welcome.read == null ? welcome.seq : welcome.read + 1;
    becameMember(Boolean(welcome.registered));
    startBacklog(welcome, first ? null : missedAfter);
    roomsOfWelcome(welcome.rooms ?? []);
    if (first) openWanted();
  },

  resumeRefused(error) {
    notice(`could not resume (${safe(error.message)})`);
  },

  resumed(resumed) {
    page.me = resumed.name;
    page.historyAsked = []; // answers owed on the old connection are lost: asked again once live
    if (page.backlog) page.backlog.reconnected();
    setMembers(resumed.members);
    reenterRooms(); // a connection's end takes her out of every room but the default one; resume covers that one only
    const count = resumed.messages;
    notice(
      resumed.replayed === 0
        ? "reconnected; nothing was missed"
        : `reconnected; ${count} missed message${count === 1 ? "" : "s"} follow${count === 1 ? "s" : ""}`,
    );
    if (!resumed.recovered) {
      const gone = resumed.gone ? ` (events ${resumed.gone[0]}-${resumed.gone[1]})` : "";
      notice(`some events are no longer kept by the tracker and were missed${gone}`);
    }
  },

  live(pending) {
    setStatus("Connected.");
    view.pendingChanged(pending);
    page.link.askRoster(); // the offline members are in no welcome
    fetchMissed();
    scheduleRead();
    for (const key of page.views.keys()) scheduleRoomRead(key);
  },

  event(message, own) {
    const place = placeOf(message, page.me, page.places.defaultName);
    if (place.key === DEFAULT_PLACE) membersChanged(message);
    else placeMembersChanged(place, message);
    const line = eventLine(message);
    if (line === null) return;
    if (place.key !== DEFAULT_PLACE) placeView(place);
    const counts = message.type === "message" && !own;
    if (page.places.arrived(place, counts)) renderPlaces();
    append(line, { counts, key: place.key });
    if (line.classList.contains("mention")) notify(message);
  },

  entered(entered) {
    roomEntered(entered);
  },

  parted(parted) {
    roomParted(parted);
  },

  roomList(rooms) {
    showDirectory(rooms);
  },

  invited(invited) {
    invitation(invited);
  },

  historyPage(history) {
    if (typeof history.room === "string") {
      roomHistory(history);
      return;
    }
    const asked = page.historyAsked.shift();
    if (asked === "missed") missedPage(history);
    else if (asked === "older") olderPage(history);
  },

  members(members, askedByPerson, room) {
    const place = room === null ? defaultPlace() : placeOf({ room }, page.me, page.places.defaultName);
    if (place.key !== DEFAULT_PLACE) {
      placeView(place).members = memberMap(members);
      if (place.key === page.places.current) renderMembers();
    } else {
      setMembers(members);
    }
    if (askedByPerson) {
      const here = members.filter((m) => m.online !== false);
      const list = here.map((m) => safe(m.name) + (m.away ? " (away)" : ""));
      notice(`online now (${list.length}): ${list.join(", ")}`);
      const away = members.filter((m) => m.online === false).map((m) => `${safe(m.name)} (${lastSeenText(m.last_seen)})`);
      if (away.length) notice(`offline members (${away.length}): ${away.join(", ")}`);
    }
  },

  pendingChanged(pending) {
    const list = $("pending");
    list.replaceChildren(...pending.map((entry) => element("li", "line queued", `${entry.text} (not sent yet)`)));
    list.hidden = pending.length === 0 || page.link.state === "live";
  },

  leavingLater(owed) {
    const lines = owed === 0 ? "" : ` after the ${owed === 1 ? "line" : `${owed} lines`} not sent yet`;
    notice(`not connected: leaving once reconnected${lines}`);
  },

  error(error) {
    problem(`${safe(error.message)} (${safe(error.code)})`);
  },

  devices(devices) {
    const ours = page.link.currentDevice;
    $("device-list").replaceChildren(...devices.map((device) => deviceItem(device, device.current || device.id === ours?.id)));
    $("devices-panel").hidden = false;
  },

  signedOut(device) {
    if (device === page.signingOut && device === page.link.connectedAs) return; // the close (4015) that follows says it
    const which = device === page.signingOut ? "this browser" : "the device";
    notice(`${which} is signed out: it signs in again only with the passphrase`);
    if (!page.link.request({ type: "devices" })) $("devices-panel").hidden = true;
  },

  bye(bye) {
    if (bye.reason === "restart") notice("the tracker is restarting; reconnecting...");
    else if (!["left", "parted", "signed_out"].includes(bye.reason)) notice(safe(bye.message) || `bye (${safe(bye.reason)})`);
  },

  lost(tell, seconds, pending) {
    if (tell) notice("connection lost; reconnecting...");
    setStatus(`Connection lost. Reconnecting in ${Math.max(1, Math.round(seconds))} s...`, true);
    view.pendingChanged(pending);
  },

  ended(text, error, code, bye, joined) {
    if (code === SIGNED_OUT) text = SIGNED_OUT_TEXT; // the Link forgot this browser's token
    if (joined) {
      if (text) notice(text);
      else if (error) problem(safe(error.message));
      else if (!bye) problem(`the tracker closed the connection (code ${code})`);
      notice("Reload the page to join again.");
      $("message").disabled = true;
      $("leave").disabled = true;
      $("part").disabled = true;
      becameMember(false);
      setStatus(text || "Disconnected.");
      return;
    }
    show("password-form");
    const why = error ? safe(error.message) : closeReason(code);
    $("password-problem").textContent = why;
    setStatus("");
    $("password").focus();
  },
};

const SIGNED_OUT = 4015;
const SIGNED_OUT_TEXT = "This device was signed out; sign in again with your passphrase.";
const SIGN_IN_PROBLEMS = {
  bad_passphrase: "Wrong passphrase.",
  bad_device_token: "This browser is no longer signed in to this name: enter its passphrase.",
};

function closeReason(code) {
  if (code === 1006) return "Cannot reach the tracker. Check the address and try again.";
  if (code === 4002) return "Too slow: the tracker gave up waiting. Try again.";
  if (code === 4005 || code === 4009) return "The tracker is busy. Try again in a moment.";
  if (code === 4013 || code === 4014) return "Too many attempts from your address. Try again in a minute.";
  if (code === SIGNED_OUT) return SIGNED_OUT_TEXT;
  return `The tracker closed the connection (code ${code}).`;
}

// --- what the person does ----------------------------------------------------------

function socketUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
}

function passwordEntered(event) {
  event.preventDefault();
  const field = $("password");
  const password = field.value;
  field.value = ""; // kept in the Link's memory only, not in the page
  if (!password) return;
  $("password-problem").textContent = "";
  setStatus("Connecting...");
  page.link = new Link(socketUrl(), password, view, { tokens: page.tokens, deviceLabel: deviceLabel(navigator.userAgent) });
  page.link.start();
}

function nameEntered(event) {
  event.preventDefault();
  const name = $("name").value.trim();
  if (!name) return;
  $("name-problem").textContent = "";
  const passphrase = $("passphrase-field").hidden ? null : $("passphrase").value;
  $("passphrase").value = ""; // kept in the Link's memory only, as the password is
  page.link.join(name, passphrase);
}

function registerToggled(open) {
  $("register-form").hidden = !open;
  $("register-problem").textContent = "";
  $("new-passphrase").value = "";
  $("passphrase-again").value = "";
  if (open) $("new-passphrase").focus();
}

function registerEntered(event) {
  event.preventDefault();
  const passphrase = $("new-passphrase").value;
  const reason = passphraseProblem(passphrase, $("passphrase-again").value);
  if (reason) {
    $("register-problem").textContent = reason;
    return;
  }
  if (!page.link.register(passphrase)) {
    $("register-problem").textContent = "Not connected: try again once the page says Connected.";
    return;
  }
  registerToggled(false);
}

// --- devices ------------------------------------------------------------------------

function deviceItem(device, thisDevice) {
  const item = element("li", thisDevice ? "device current" : "device");
  const button = element("button", "sign-out", thisDevice ? "Sign out this device" : "Sign out");
  button.type = "button";
  button.addEventListener("click", () => signOutClicked(device.id, thisDevice));
  item.append(element("span", "text", deviceText(device, thisDevice)), button);
  return item;
}

function devicesToggled() {
  if (!$("devices-panel").hidden) {
    $("devices-panel").hidden = true;
    return;
  }
  if (!page.link.request({ type: "devices" })) problem("not connected: try again once the page says Connected");
}

// Signing this device out forgets its token at once: the tracker's 4015 close may never arrive.
function signOutClicked(id, thisDevice) {
  if (!page.link.request({ type: "sign_out", device: id })) {
    problem("not connected: try again once the page says Connected");
    return;
  }
  if (!thisDevice) return;
  page.signingOut = id;
  page.link.forgetDevice();
}

function partToggled(open) {
  $("part-form").hidden = !open;
  if (open) $("part-confirm").focus();
}

function partConfirmed(event) {
  event.preventDefault();
  $("part-form").hidden = true;
  flushRead(true);
  if (!page.link.part()) problem("not connected: try again once the page says Connected");
}

function leaveClicked() {
  if (!page.link) return;
  flushRead(true);
  page.link.leave();
}

function lineEntered(event) {
  event.preventDefault();
  const input = $("message");
  const line = input.value;
  if (!line.trimStart().startsWith("//") && roomCommand(line)) {
    input.value = "";
    return;
  }
  const command = parseCommand(line);
  const place = page.places.selected;
  const inRoom = place.kind === "room" && place.key !== DEFAULT_PLACE;
  if (command.action === "send") {
    if (!sendLine(command.text)) return; // kept in the input, to be shortened
  } else if (command.action === "who") {
    if (!page.link.who(inRoom ? place.name : null)) problem("not connected: /who not sent");
  } else if (command.action === "help") {
    for (const text of HELP) notice(text, null, "notice help");
  } else if (command.action === "quit") {
    leaveClicked();
  } else if (command.action === "register") {
    registerToggled(true);
  } else if (command.action === "part") {
    if (inRoom) partRoom(place.name);
    else if (page.registered) partToggled(true);
    else problem("/part is for a registered name; a guest leaves with exit or /quit");
  } else if (command.action === "unknown") {
    problem(`unknown command ${safe(command.text)}; /help lists them`);
  }
  input.value = "";
}

// A message to the place shown: false (and why, in the log) if it cannot be sent as it is.
function sendLine(text) {
  const refusal = unsendable(text);
  if (refusal) {
    problem(refusal);
    return false;
  }
  const refused = page.link.say(text, destination(page.places.selected));
  if (refused) problem(refused);
  return true;
}

function unsendable(text) {
  const limits = page.link.limits;
  if (!text.trim()) return "an empty message is not sent";
  if (hasLoneSurrogate(text)) return "the message has a broken character";
  if (limits && length(text) > limits.max_message_chars) {
    return `message too long: ${length(text)} characters, the limit is ${limits.max_message_chars}`;
  }
  return null;
}

function scrolled() {
  const log = currentLog();
  if (page.places.current === DEFAULT_PLACE && log.scrollTop === 0 && log.scrollHeight > log.clientHeight) askOlder();
  if (atBottom()) {
    page.unseen = 0;
    $("new-messages").hidden = true;
  }
}

function jumpToNewest() {
  const log = currentLog();
  log.scrollTop = log.scrollHeight;
  scrolled();
  $("message").focus();
}

function visibilityChanged() {
  if (document.visibilityState === "visible") {
    page.unread = 0;
    document.title = TITLE;
    if (page.link) page.link.checkAlive();
  }
}

function start() {
  $("password-form").addEventListener("submit", passwordEntered);
  $("name-form").addEventListener("submit", nameEntered);
  $("message-form").addEventListener("submit", lineEntered);
  $("log").addEventListener("scroll", scrolled, { passive: true });
  startRooms();
  $("new-messages").addEventListener("click", jumpToNewest);
  $("notify").addEventListener("change", notificationsToggled);
  $("leave").addEventListener("click", leaveClicked);
  $("part").addEventListener("click", () => partToggled(true));
  $("part-cancel").addEventListener("click", () => partToggled(false));
  $("part-form").addEventListener("submit", partConfirmed);
  $("devices").addEventListener("click", devicesToggled);
  $("devices-close").addEventListener("click", () => ($("devices-panel").hidden = true));
  window.addEventListener("pagehide", () => {
    flushRead(true);
    for (const key of page.views.keys()) flushRoomRead(key, true);
  });
  page.observer = new IntersectionObserver(linesSeen, { root: $("log"), threshold: [0, 0.5, 1] });
  $("register").addEventListener("click", () => registerToggled(true));
  $("register-cancel").addEventListener("click", () => registerToggled(false));
  $("register-form").addEventListener("submit", registerEntered);
  $("reconnect").addEventListener("click", () => page.link && page.link.reconnectNow());
  document.addEventListener("visibilitychange", visibilityChanged);
  window.addEventListener("online", () => page.link && page.link.checkAlive());
  document.addEventListener("resume", () => page.link && page.link.checkAlive()); // unfrozen (Page Lifecycle)
  show("password-form");
  $("password").focus();
}

start();

// A moderator's action as a notice (docs/moderation.md), every peer-given string made safe.
function moderationText(event) {
  const target = event.name ? safe(event.name) : "an address";
  const because = event.reason ? `: ${safe(event.reason)}` : "";
  if (event.action === "kick") return `${target} was removed by a moderator${because}`;
  if (event.action === "mute") {
    return event.seconds ? `${target} is muted for ${event.seconds} s${because}` : `${target} may speak again`;
  }
  if (event.action === "ban") {
    const howLong = event.seconds == null ? "for good" : `for ${event.seconds} s`;
    return `${target} is banned ${howLong} (ban ${safe(event.id ?? "?")})${because}`;
  }
  return `ban ${safe(event.id ?? "?")} was lifted`;
}
