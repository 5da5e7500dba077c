// The member's session across connections: the groupchat.v1 dialogue on each WebSocket,
// reconnection with jittered backoff, resume from the last seq, and the resend of what
// was not acknowledged. The page (app.js) gives it a `view` to report to; nothing here
// touches the DOM. The password lives in this object only, for the reconnections; a registered
// name's device token is kept in `tokens` (logic.js DeviceTokens) and replaced by each welcome's.
// A port of chat_client/link.py: where the session stands is a LinkMachine (logic.js,
// the table of link_state.py), and every move goes through it.

import {
  InvalidState,
  LinkEvent,
  LinkMachine,
  LinkState,
  Memory,
  SUBPROTOCOL,
  TokenBucket,
  backoffDelay,
  nameKey,
  shouldRetry,
} from "./logic.js";

const PROBE_TIMEOUT_MS = 5000; // a `who` unanswered this long: the connection is dead (a laptop slept)
// The member list is the welcome's (or resumed's), kept up to date by joined and left events:
// no `who` is sent unless the person asks, or to probe a connection that may have died.
const TRY_LATER = new Set(["too_many_guesses", "too_many_joins"]); // carry retry_after; close 4013/4014 follows
const TRY_LATER_SECONDS = 10;
const NAME_ERRORS = new Set([
  "name_invalid",
  "name_reserved",
  "name_taken",
  "log_unavailable",
  "shutting_down",
  "passphrase_required", // a registered name: the page asks for its passphrase
  "bad_passphrase",
  "bad_device_token", // this browser's sign-in ended (signed out, or its token spent): the passphrase again
]);
const JOINS = new Set([LinkState.ENTERING, LinkState.JOINING]); // where a refused name is asked again
const RESUME_ERRORS = new Set(["resume_bad_token", "resume_wrong_epoch", "resume_expired", "resume_beyond_end"]);

const SIGNED_OUT = 4015; // this device was signed out: its token is dead, no reconnection

export class Link {
  // `tokens`: where device tokens are kept (none: every sign-in takes the passphrase); `deviceLabel`:
  // the `device` a passphrase sign-in sends, naming this browser in the account's Devices list.
  constructor(url, password, view, { tokens = null, deviceLabel = null } = {}) {
    this.url = url;
    this.password = password;
    this.passphrase = null; // a registered name's, once it signed in (or registered): for joining afresh
    this.offered = null; // the passphrase the last join carried
    this.tokens = tokens;
    this.deviceLabel = deviceLabel;
    this.device = null; // {name, id, token} of the last sign-in: when `tokens` cannot keep it
    this.tokenOffered = null; // the device token the last join carried
    this.joinName = null; // the name the last join asked for
    this.connectedAs = null; // the device id this connection signed in as (none: a guest, or registered on it)
    this.view = view;
    this.memory = null; // set at the first welcome
    this.ws = null;
    this.machine = new LinkMachine();
    this.attempt = 0;
    this.leaving = false; // the person's request: it outlives connections, so it is not a state
    this.bye = null;
    this.outgoing = []; // frames waiting for the pacing bucket, in order
    this.bucket = null;
    this.pumpTimer = null;
    this.retryTimer = null;
    this.probeTimer = null;
    this.whoAsked = []; // per `who` sent on this connection: true if the person asked for it
    this.retryAfter = 0; // seconds the tracker asked us to wait before the next attempt
  }

  get state() {
    return this.machine.state;
  }

  // --- for the page ----------------------------------------------------------------

  start() {
    this.machine.fire(LinkEvent.START);
    this.open();
  }

  // Join under `name`: with the passphrase the person typed; else with this browser's device token
  // for the name (no passphrase asked, no hash spent, no new device); else with the passphrase
  // already given in this tab (joining afresh after a lost connection).
  join(name, passphrase = null) {
    this.machine.fire(LinkEvent.JOIN);
    this.joinName = name;
    this.tokenOffered = passphrase ? null : this.tokenFor(name);
    this.offered = passphrase || (this.tokenOffered ? null : this.passphrase);
    this.sendNow(this.joinFrame(name));
  }

  joinFrame(name) {
    if (this.tokenOffered) return { type: "join", name, device_token: this.tokenOffered };
    if (!this.offered) return { type: "join", name };
    const frame = { type: "join", name, passphrase: this.offered };
    if (this.deviceLabel) frame.device = this.deviceLabel;
    return frame;
  }

  // The kept token first: another tab of this browser may have spent the one in memory since.
  tokenFor(name) {
    const kept = this.tokens ? this.tokens.get(name) : null;
    if (kept) return kept.token;
    return this.device && nameKey(this.device.name) === nameKey(name) ? this.device.token : null;
  }

  // The device this tab signed in as, if any: {name, id, token}.
  get currentDevice() {
    return this.device;
  }

  // Make the name we use an account; false when not connected (the answer comes as `registered` or an error).
  register(passphrase) {
    this.remembered("register");
    if (this.state !== LinkState.LIVE) return false;
    this.sendNow({ type: "register", passphrase });
    this.offered = passphrase;
    return true;
  }

  onRegistered(registered) {
    this.passphrase = this.offered;
    this.view.registered(registered);
    if (this.tokens && this.passphrase) this.enrol(registered.name, this.passphrase);
  }

  // `registered` hands no device token: sign in once more, with the passphrase, on a connection of
  // its own (an extra connection of the account: nobody sees it come or go), keep the welcome's
  // token, and leave. The next visit then signs in with the token.
  enrol(name, passphrase) {
    const ws = new WebSocket(this.url, [SUBPROTOCOL]);
    const send = (frame) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(frame));
    const join = { type: "join", name, passphrase };
    if (this.deviceLabel) join.device = this.deviceLabel;
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "hello" && !frame.authenticated) send({ type: "auth", password: this.password });
      else if (frame.type === "hello" || frame.type === "authenticated") send(join);
      else if (frame.type === "welcome") {
        this.keepDevice(frame);
        send({ type: "leave" });
      } else if (frame.type === "error" || frame.type === "bye") ws.close(1000);
    };
  }

  keepDevice(welcome) {
    if (!welcome.device_token) return;
    this.device = { name: welcome.name, id: welcome.device ?? null, token: welcome.device_token };
    if (this.tokens) this.tokens.keep(welcome.name, welcome.device, welcome.device_token);
  }

  forgetDevice() {
    const name = this.device ? this.device.name : this.memory ? this.memory.name : null;
    this.device = null;
    if (this.tokens && name) this.tokens.forget(name);
  }

  // A line to send: now when live, else kept for the next connection. Returns a refusal or null.
  // `where`: {room} or {to} (logic.js destination); none: the default room.
  say(text, where = null) {
    const memory = this.remembered("say");
    if (this.state === LinkState.LIVE) {
      this.queueFrame(messageFrame(memory.sent(text, where)));
    } else if (memory.queue(text, where) === null) {
      return "not connected: line not kept, 100 lines are already waiting";
    }
    this.view.pendingChanged(memory.pending);
    return null;
  }

  who(room = null) {
    this.remembered("who");
    if (this.state !== LinkState.LIVE) return false;
    this.askWho(true, room);
    return true;
  }

  // --- rooms (protocol.md#rooms-and-direct-messages): false when there is no connection to carry them ---

  // Enter `room` (created if new, private if asked): answered with `entered`.
  enter(room, isPrivate = false) {
    const frame = { type: "join", room };
    if (isPrivate) frame.private = true;
    return this.request(frame);
  }

  // Leave `room` (not the default one): answered with `parted`.
  partRoom(room) {
    return this.request({ type: "part", room });
  }

  listRooms() {
    return this.request({ type: "rooms" });
  }

  invite(room, name) {
    return this.request({ type: "invite", room, name });
  }

  // The room's owner takes `name` out of it (she gets `parted` `removed`).
  remove(room, name) {
    return this.request({ type: "remove", room, name });
  }

  // Leave: at once when live; else after the lines still owed, on the next connection (as chat-client).
  leave() {
    const memory = this.remembered("leave");
    this.leaving = true;
    if (this.state === LinkState.LIVE) this.queueFrame({ type: "leave" });
    else this.view.leavingLater(memory.pending.length);
  }

  // Leave for good (a registered member's membership ends): only when live, answered with `bye` `parted`.
  part() {
    this.remembered("part");
    if (this.state !== LinkState.LIVE) return false;
    this.leaving = true;
    this.queueFrame({ type: "part" });
    return true;
  }

  // A `history` or `read` frame (protocol.md#membership); false when there is no connection to carry it.
  request(frame) {
    if (this.ws === null || this.ws.readyState !== WebSocket.OPEN || this.memory === null) return false;
    this.sendNow(frame);
    return true;
  }

  // One `who` the person did not ask for: the offline members are only in its answer.
  askRoster() {
    if (this.state === LinkState.LIVE) this.askWho(false);
  }

  reconnectNow() {
    if (this.state === LinkState.WAITING) {
      clearTimeout(this.retryTimer);
      this.reconnect();
    }
  }

  // The network came back, or the tab is shown again (perhaps after hours asleep): check.
  checkAlive() {
    if (this.state === LinkState.WAITING) this.reconnectNow();
    else if (this.state === LinkState.LIVE) this.probe();
  }

  get limits() {
    return this.memory ? this.memory.limits : null;
  }

  // --- one connection --------------------------------------------------------------

  reconnect() {
    this.machine.fire(LinkEvent.RECONNECT);
    this.open();
  }

  open() {
    this.bye = null;
    this.whoAsked = [];
    const ws = new WebSocket(this.url, [SUBPROTOCOL]);
    this.ws = ws;
    ws.onmessage = (event) => {
      if (this.ws === ws) this.receive(JSON.parse(event.data));
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.closed(event.code);
    };
  }

  // Stop listening to the current socket (it may be dead without knowing it) and close it.
  abandon(code) {
    const ws = this.ws;
    this.ws = null;
    this.stopTimers();
    this.outgoing = [];
    if (ws !== null) {
      ws.onmessage = ws.onclose = null;
      // Not 1000 (that would be leaving): a 4000 close is a lost connection the tracker keeps as away.
      if (ws.readyState <= WebSocket.OPEN) ws.close(code, "reconnecting");
    }
  }

  receive(message) {
    clearTimeout(this.probeTimer); // any frame shows the connection is alive
    const handler = HANDLERS[message.type];
    if (handler) handler.call(this, message);
  }

  onHello(hello) {
    if (hello.authenticated) this.onAuthenticated();
    else this.sendNow({ type: "auth", password: this.password });
  }

  onAuthenticated() {
    if (this.state === LinkState.ENTERING) {
      this.view.askName();
      return;
    }
    const request = this.memory.resumeRequest();
    if (request) {
      this.machine.fire(LinkEvent.RESUME);
      this.sendNow(request);
    } else {
      this.join(this.memory.name);
    }
  }

  onWelcome(welcome) {
    const first = this.memory === null;
    const missedAfter = first ? null : this.memory.lastSeq;
    if (first) this.memory = new Memory(welcome);
    else this.memory.onWelcome(welcome);
    if (welcome.registered && this.offered) this.passphrase = this.offered;
    this.keepDevice(welcome);
    this.connectedAs = welcome.device ?? null;
    this.machine.fire(LinkEvent.WELCOME);
    this.view.welcome(welcome, first, missedAfter);
    this.attached();
    this.resendWhenReplayed();
  }

  onResumed(resumed) {
    this.memory.onResumed(resumed);
    this.machine.fire(LinkEvent.RESUMED);
    this.view.resumed(resumed);
    this.attached();
    this.resendWhenReplayed();
  }

  onEvent(message) {
    if (this.memory === null) return;
    const own = message.type === "message" && message.name === this.memory.name;
    if (this.memory.onEvent(message)) this.view.event(message, own);
    if (own) this.view.pendingChanged(this.memory.pending);
    this.resendWhenReplayed();
  }

  onMembers(members) {
    const askedByPerson = this.whoAsked.length ? this.whoAsked.shift() : false;
    clearTimeout(this.probeTimer);
    this.view.members(members.members, askedByPerson, members.room ?? null);
  }

  onError(error) {
    if (this.memory !== null && error.id) {
      this.memory.onEvent(error); // a refused message: never echoed, not to be sent again (as chat-client)
      this.view.pendingChanged(this.memory.pending);
    }
    if (TRY_LATER.has(error.code)) {
      this.retryAfter = error.retry_after || TRY_LATER_SECONDS;
      if (this.state === LinkState.ENTERING) this.finish(null, error); // not in yet: the person is told, and tries later
    } else if (error.code === "rate_limited" && !error.id && this.whoAsked.length) {
      if (this.whoAsked.shift()) this.view.error(error); // a refused `who`: shown only if the person asked
    } else if (error.code === "bad_password") {
      this.password = null; // refused: of no use for another attempt
      this.finish(null, error);
    } else if (error.code === "bad_device_token" && this.tokenRefused()) {
      // signed in again with the passphrase this tab still holds
    } else if (JOINS.has(this.state) && NAME_ERRORS.has(error.code)) {
      this.view.nameRefused(error); // the next join comes from the person
    } else if (this.state === LinkState.RESUMING && RESUME_ERRORS.has(error.code)) {
      this.view.resumeRefused(error);
      this.join(this.memory.name); // join afresh under the same name
    } else {
      this.view.error(error);
    }
  }

  // The token the last join offered is dead: forget it (unless another tab kept a newer one), and
  // join again with the passphrase when this tab has it; true if it did.
  tokenRefused() {
    const refused = this.tokenOffered;
    this.tokenOffered = null;
    if (this.device && this.device.token === refused) this.device = null;
    const name = this.joinName;
    const kept = this.tokens && name ? this.tokens.get(name) : null;
    if (kept && kept.token === refused) this.tokens.forget(name);
    if (!JOINS.has(this.state) || !this.passphrase || name === null) return false;
    this.join(name, this.passphrase);
    return true;
  }

  onBye(bye) {
    this.bye = bye;
    this.view.bye(bye);
  }

  closed(code) {
    this.ws = null;
    this.stopTimers();
    this.outgoing = [];
    if (this.state === LinkState.ENDED) return;
    if (this.state === LinkState.ENTERING) {
      // Before the first welcome: the page reports it on the password or name form.
      this.finish(null, null, code);
    } else if (this.leaving && (code === 1000 || this.bye)) {
      this.finish(this.bye && this.bye.reason === "parted" ? "You left the chat for good." : "You left the chat.");
    } else if (shouldRetry(code) || code === 1005) {
      this.lost();
    } else {
      this.finish(null, null, code);
    }
  }

  lost() {
    this.machine.fire(LinkEvent.LOST);
    const seconds = Math.max(backoffDelay(this.attempt), this.retryAfter);
    this.retryAfter = 0;
    const first = this.attempt === 0;
    this.attempt += 1;
    this.view.lost(first && !this.bye, seconds, this.memory.pending);
    this.retryTimer = setTimeout(() => this.reconnect(), seconds * 1000);
  }

  finish(text, error = null, code = null) {
    this.machine.fire(LinkEvent.END);
    this.stopTimers();
    clearTimeout(this.retryTimer);
    this.abandon(1000);
    this.password = null;
    if (code === SIGNED_OUT) this.forgetDevice();
    this.view.ended(text, error, code, this.bye, this.memory !== null);
  }

  // --- in the room -----------------------------------------------------------------

  attached() {
    this.attempt = 0;
    this.bucket = TokenBucket.below(this.memory.limits);
  }

  // The replay is in: send again what was not acknowledged (same ids), then what waited; go live.
  // The frames queue in order behind the pacing, so RESENDING lasts no longer than this call.
  resendWhenReplayed() {
    if (this.state !== LinkState.REPLAYING || this.memory.replaying) return;
    this.machine.fire(LinkEvent.REPLAYED);
    for (const owed of this.memory.linesToResend()) {
      if (this.memory.isUnacknowledged(owed)) this.queueFrame(messageFrame(owed));
    }
    if (this.leaving) this.queueFrame({ type: "leave" });
    this.machine.fire(LinkEvent.RESENT);
    this.view.live(this.memory.pending);
  }

  askWho(byPerson, room = null) {
    this.whoAsked.push(byPerson);
    this.sendNow(room ? { type: "who", room } : { type: "who" });
  }

  probe() {
    this.askWho(false);
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => {
      if (this.state !== LinkState.LIVE) return;
      this.abandon(4000);
      this.lost();
    }, PROBE_TIMEOUT_MS);
  }

  // --- sending ---------------------------------------------------------------------

  sendNow(frame) {
    if (this.ws !== null && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  // Messages go out at the bucket's pace; anything else waits its turn behind them.
  queueFrame(frame) {
    this.outgoing.push(frame);
    this.pump();
  }

  pump() {
    if (this.pumpTimer !== null) return;
    while (this.outgoing.length) {
      const frame = this.outgoing[0];
      if (frame.type === "message" && !frame.paced) {
        frame.paced = true;
        const wait = this.bucket.reserve();
        if (wait > 0) {
          this.pumpTimer = setTimeout(() => {
            this.pumpTimer = null;
            this.pump();
          }, wait * 1000);
          return;
        }
      }
      this.outgoing.shift();
      delete frame.paced;
      this.sendNow(frame);
    }
  }

  // What the person's operations work on: there from the first welcome on.
  remembered(operation) {
    if (this.memory === null) throw new InvalidState(operation, this.state);
    return this.memory;
  }

  stopTimers() {
    clearTimeout(this.probeTimer);
    clearTimeout(this.pumpTimer);
    this.pumpTimer = null;
  }
}

// The frame of a message the memory holds: to the default room, to a room, or to one member.
function messageFrame(entry) {
  const frame = { type: "message", text: entry.text, id: entry.id };
  if (entry.room) frame.room = entry.room;
  if (entry.to) frame.to = entry.to;
  return frame;
}

const HANDLERS = {
  hello: Link.prototype.onHello,
  authenticated: Link.prototype.onAuthenticated,
  welcome: Link.prototype.onWelcome,
  resumed: Link.prototype.onResumed,
  joined: Link.prototype.onEvent,
  message: Link.prototype.onEvent,
  left: Link.prototype.onEvent,
  moderation: Link.prototype.onEvent,
  announcement: Link.prototype.onEvent,
  presence: Link.prototype.onEvent,
  history_page: function (page) {
    this.view.historyPage(page);
  },
  members: Link.prototype.onMembers,
  entered: function (entered) {
    if (this.memory !== null) this.memory.entered(entered.room, entered.seq);
    this.view.entered(entered);
  },
  parted: function (parted) {
    this.view.parted(parted);
  },
  room_list: function (list) {
    this.view.roomList(list.rooms);
  },
  invited: function (invited) {
    this.view.invited(invited);
  },
  error: Link.prototype.onError,
  bye: Link.prototype.onBye,
  registered: Link.prototype.onRegistered,
  devices: function (devices) {
    this.view.devices(devices.devices);
  },
  signed_out: function (signedOut) {
    if (this.device && this.device.id === signedOut.device) this.forgetDevice();
    this.view.signedOut(signedOut.device);
  },
};
