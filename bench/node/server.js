// REFERENCE, NOT PRODUCT CODE: the benchmark's Node.js anchor.
//
// A bare `ws` server (no compression) speaking the tracker's plain-text dialogue
// exactly as bench/ref_ceiling.py does (password, name, then every line to everyone
// else), so that bench.loadgen's WebSocket client works unchanged. Every message is
// encoded once and sent to each other member; nothing is awaited per recipient, no
// log, no limits, no backpressure. Started by bench/native.py:
//
//     NODE_PATH=~/.cache/groupchat-bench/node/node_modules \
//         node bench/node/server.js --port 8001 --password alphonso
"use strict";

const { WebSocketServer } = require("ws");

function options(argv) {
  const given = { host: "127.0.0.1", port: 0, password: "", pingInterval: 20, pingTimeout: 20 };
  const names = {
    "--host": "host",
    "--port": "port",
    "--password": "password",
    "--ping-interval": "pingInterval",
    "--ping-timeout": "pingTimeout",
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (key === undefined || i + 1 >= argv.length) {
      throw new Error(`usage: server.js --port P --password W [--host H] [--ping-interval S] [--ping-timeout S]`);
    }
    given[key] = typeof given[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!given.port || !given.password) throw new Error("--port and --password are required");
  return given;
}

const members = new Map(); // joined connection -> name, in joining order

// One encoding for all recipients, as websockets.broadcast() does in the Python ceiling.
function broadcast(line, except) {
  const frame = Buffer.from(line);
  for (const peer of members.keys()) {
    if (peer !== except) peer.send(frame, { binary: false });
  }
}

function dialogue(connection, password) {
  let state = "password";
  let name = "";
  connection.send("Enter server password...");
  connection.on("message", (data) => {
    const text = data.toString().replace(/[\r\n]+$/, "");
    if (state === "joined") {
      if (text === "exit") {
        connection.send(`Bye, ${name}.`);
        connection.close(1000);
        return;
      }
      broadcast(`${name}: ${text}`, connection);
    } else if (state === "password") {
      if (text !== password) {
        connection.send("Wrong password. Bye.");
        connection.close(4001);
        state = "closing";
        return;
      }
      state = "name";
      connection.send("Welcome to our server...");
      connection.send("Enter your username...");
    } else if (state === "name") {
      name = text;
      const online = [...members.values(), name].join(", ");
      connection.send(`Hi ${name}, You have been added to the server.`);
      connection.send(`Online now (${members.size + 1}): ${online}`);
      connection.send("Limits: none (reference server).");
      connection.send("Just type your message and press Enter; send exit to leave.");
      broadcast(`* ${name} joined the chat`, null);
      members.set(connection, name);
      state = "joined";
    }
  });
  connection.on("close", () => {
    if (members.delete(connection)) broadcast(`* ${name} left the chat`, null);
  });
}

// Keepalive like the Python servers': a ping every interval; a connection whose
// previous ping is still unanswered after the timeout is dropped.
function keepalive(server, intervalSeconds, timeoutSeconds) {
  if (!(intervalSeconds > 0)) return;
  const timer = setInterval(() => {
    const now = Date.now();
    for (const connection of server.clients) {
      if (connection.pingSentAt && now - connection.pingSentAt > timeoutSeconds * 1000) {
        connection.terminate();
        continue;
      }
      if (!connection.pingSentAt) {
        connection.pingSentAt = now;
        connection.ping();
      }
    }
  }, intervalSeconds * 1000);
  timer.unref();
}

function main() {
  const given = options(process.argv.slice(2));
  const server = new WebSocketServer({
    host: given.host,
    port: given.port,
    perMessageDeflate: false,
    maxPayload: 65536,
  });
  server.on("connection", (connection) => {
    connection.on("pong", () => {
      connection.pingSentAt = 0;
    });
    connection.on("error", () => connection.terminate());
    dialogue(connection, given.password);
  });
  server.on("listening", () => {
    console.log(`Listening on http://${given.host}:${given.port} (reference: nodews)`);
  });
  keepalive(server, given.pingInterval, given.pingTimeout);
  process.on("SIGTERM", () => process.exit(0));
}

main();
