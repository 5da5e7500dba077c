// The web half of test_link_parity.py: the page's Link (web/link.js) on fake WebSockets, fed the
// scenario's steps, one snapshot after the start and after each step. link_parity.py does the
// same with the terminal client's Link; the test compares the two lists.
//
// Steps: {frame}: the tracker sends it; {close: code}: the connection ends (if the Link then
// waits to reconnect, its backoff is over at once, as link_parity.py's delay of 0);
// {accept: true}: the tracker answers a new connection (hello, authenticated); {say}, {leave},
// {who}: the person. A snapshot: the state, every frame sent so far, and what the step returned
// or raised.
async ({ name, steps }) => {
  const { Link } = await import("/web/link.js");
  const sent = [];
  const sockets = [];

  class FakeSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor() {
      this.readyState = FakeSocket.OPEN;
      sockets.push(this);
    }

    send(text) {
      sent.push(JSON.parse(text));
    }

    close() {
      this.readyState = FakeSocket.CLOSED;
    }
  }

  let link = null;
  // The person at the page: asked for a name, gives the scenario's; the rest is not looked at here.
  const view = new Proxy({}, { get: (_, key) => (key === "askName" ? () => link.join(name) : () => {}) });
  const socket = () => sockets[sockets.length - 1];
  const deliver = (frame) => socket().onmessage && socket().onmessage({ data: JSON.stringify(frame) });
  const hello = { type: "hello", protocol: "groupchat.v1", authenticated: true };

  function apply(step) {
    if (step.frame) return deliver(step.frame);
    if (step.accept) return deliver(hello);
    if (step.close) {
      if (socket().onclose) socket().onclose({ code: step.close });
      if (link.state === "waiting") link.reconnectNow();
      return null;
    }
    if (step.say !== undefined) return link.say(step.say);
    if (step.leave) return link.leave();
    if (step.who) return link.who();
    throw new Error(`unknown step ${JSON.stringify(step)}`);
  }

  function snapshot(run) {
    let result = null;
    try {
      result = run() ?? null;
    } catch (error) {
      if (error.name !== "InvalidState") throw error;
      result = { raised: error.name, state: error.state };
    }
    return { state: link.state, sent: structuredClone(sent), result };
  }

  const realSocket = globalThis.WebSocket;
  const realRandom = crypto.getRandomValues;
  globalThis.WebSocket = FakeSocket;
  crypto.getRandomValues = (bytes) => bytes.fill(0); // message ids 00000000-1, -2...: as link_parity.py's
  try {
    link = new Link("ws://tracker.invalid/ws", "secret", view);
    const snapshots = [snapshot(() => (link.start(), deliver(hello)))];
    for (const step of steps) snapshots.push(snapshot(() => apply(step)));
    return snapshots;
  } finally {
    if (link !== null) {
      link.stopTimers();
      clearTimeout(link.retryTimer);
    }
    globalThis.WebSocket = realSocket;
    crypto.getRandomValues = realRandom;
  }
};
