// The page: the password and name forms, the room (messages, who is online, the input),
// and what keeps it usable (following the newest message, the unread count in the
// title, notifications on a mention). Everything a peer controls is put in the page
// with textContent, never as HTML; the Content-Security-Policy forbids innerHTML anyway.

import { Link } from "./link.js";
import {
  HELP,
  LEAVE_REASONS,
  colourIndex,
  hasLoneSurrogate,
  length,
  mentions,
  nameKey,
  parseCommand,
  passphraseProblem,
  safe,
} from "./logic.js";

const $ = (id) => document.getElementById(id);
const TITLE = document.title;
const FOLLOW_SLACK_PX = 40; // this close to the bottom counts as "at the newest message"

const page = {
  link: null,
  me: "",
  members: new Map(), // name -> away
  unread: 0,
  unseen: 0,
};

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

function atBottom() {
  const log = $("log");
  return log.scrollHeight - log.scrollTop - log.clientHeight <= FOLLOW_SLACK_PX;
}

function append(line, { counts = false } = {}) {
  const log = $("log");
  const following = atBottom();
  log.append(line);
  if (following) {
    log.scrollTop = log.scrollHeight;
  } else if (counts) {
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

function notice(text, ts = null, className = "notice") {
  const line = element("li", `line ${className}`);
  line.append(clock(ts), element("span", "text", `* ${text}`));
  append(line);
}

function problem(text) {
  const line = element("li", "line error");
  line.append(clock(null), element("span", "text", `! ${text}`));
  append(line);
}

function chatLine(message, own) {
  const line = element("li", "line message");
  line.dataset.seq = String(message.seq);
  const mentioned = !own && mentions(message.text, page.me);
  if (own) line.classList.add("own");
  if (mentioned) line.classList.add("mention");
  line.append(clock(message.ts), nameTag(message.name), element("span", "sep", ": "));
  line.append(element("bdi", "text", safe(message.text)));
  append(line, { counts: !own });
  if (mentioned) notify(message);
}

function names(list) {
  return `(${list.length}): ${list.map(safe).join(", ")}`;
}

// --- who is online -----------------------------------------------------------------

function renderMembers() {
  const list = $("members");
  const sorted = [...page.members].sort(([a], [b]) => nameKey(a).localeCompare(nameKey(b)));
  list.replaceChildren(
    ...sorted.map(([name, away]) => {
      const item = element("li", away ? "member away" : "member");
      item.append(nameTag(name));
      if (name === page.me) item.append(element("span", "tag", " (you)"));
      if (away) item.append(element("span", "tag", " away"));
      return item;
    }),
  );
  $("online-count").textContent = `(${page.members.size})`;
}

function setMembers(entries) {
  page.members = new Map(entries);
  renderMembers();
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
    $("name").focus();
  },

  nameRefused(error) {
    show("name-form");
    const signIn = error.code === "passphrase_required" || error.code === "bad_passphrase";
    $("passphrase-field").hidden = !signIn;
    $("name-problem").textContent = error.code === "bad_passphrase" ? "Wrong passphrase." : safe(error.message);
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
  },

  welcome(welcome, first, missedAfter) {
    page.me = welcome.name;
    $("register").hidden = Boolean(welcome.registered);
    setMembers(welcome.members.map((name) => [name, false]));
    show("room");
    $("message").focus();
    if (first) {
      notice(safe(welcome.greeting || `Welcome, ${welcome.name}.`), welcome.ts);
      notice(`online now ${names(welcome.members)}`, welcome.ts);
      notice("Type a message and press Enter; /who, /help; exit or /quit to leave.");
    } else {
      notice(`joined again as ${safe(welcome.name)}; what was said after seq ${missedAfter} until now was missed`, welcome.ts);
    }
  },

  resumeRefused(error) {
    notice(`could not resume (${safe(error.message)})`);
  },

  resumed(resumed) {
    page.me = resumed.name;
    setMembers(resumed.members.map((name) => [name, false]));
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
  },

  event(message, own) {
    if (message.type === "message") {
      chatLine(message, own);
    } else if (message.type === "joined") {
      page.members.set(message.name, false);
      renderMembers();
      notice(`${safe(message.name)} joined`, message.ts);
    } else if (message.type === "left") {
      page.members.delete(message.name);
      renderMembers();
      notice(`${safe(message.name)} left${LEAVE_REASONS[message.reason] ?? ` (${safe(message.reason)})`}`, message.ts);
    } else if (message.type === "moderation") {
      notice(moderationText(message), message.ts);
    } else if (message.type === "announcement") {
      notice(`Announcement: ${safe(message.text)}`, message.ts);
    }
  },

  members(members, askedByPerson) {
    setMembers(members.map((member) => [member.name, Boolean(member.away)]));
    if (askedByPerson) {
      const list = members.map((m) => safe(m.name) + (m.away ? " (away)" : ""));
      notice(`online now (${list.length}): ${list.join(", ")}`);
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

  bye(bye) {
    if (bye.reason === "restart") notice("the tracker is restarting; reconnecting...");
    else if (bye.reason !== "left") notice(safe(bye.message) || `bye (${safe(bye.reason)})`);
  },

  lost(tell, seconds, pending) {
    if (tell) notice("connection lost; reconnecting...");
    setStatus(`Connection lost. Reconnecting in ${Math.max(1, Math.round(seconds))} s...`, true);
    view.pendingChanged(pending);
  },

  ended(text, error, code, bye, joined) {
    if (joined) {
      if (text) notice(text);
      else if (error) problem(safe(error.message));
      else if (!bye) problem(`the tracker closed the connection (code ${code})`);
      notice("Reload the page to join again.");
      $("message").disabled = true;
      $("leave").disabled = true;
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

function closeReason(code) {
  if (code === 1006) return "Cannot reach the tracker. Check the address and try again.";
  if (code === 4002) return "Too slow: the tracker gave up waiting. Try again.";
  if (code === 4005 || code === 4009) return "The tracker is busy. Try again in a moment.";
  if (code === 4013 || code === 4014) return "Too many attempts from your address. Try again in a minute.";
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
  page.link = new Link(socketUrl(), password, view);
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

function lineEntered(event) {
  event.preventDefault();
  const input = $("message");
  const line = input.value;
  const command = parseCommand(line);
  if (command.action === "send") {
    const refusal = unsendable(command.text);
    if (refusal) {
      problem(refusal);
      return; // kept in the input, to be shortened
    }
    const refused = page.link.say(command.text);
    if (refused) problem(refused);
  } else if (command.action === "who") {
    if (!page.link.who()) problem("not connected: /who not sent");
  } else if (command.action === "help") {
    for (const text of HELP) notice(text, null, "notice help");
  } else if (command.action === "quit") {
    page.link.leave();
  } else if (command.action === "register") {
    registerToggled(true);
  } else if (command.action === "unknown") {
    problem(`unknown command ${safe(command.text)}; /help lists them`);
  }
  input.value = "";
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
  if (atBottom()) {
    page.unseen = 0;
    $("new-messages").hidden = true;
  }
}

function jumpToNewest() {
  const log = $("log");
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
  $("new-messages").addEventListener("click", jumpToNewest);
  $("notify").addEventListener("change", notificationsToggled);
  $("leave").addEventListener("click", () => page.link && page.link.leave());
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
