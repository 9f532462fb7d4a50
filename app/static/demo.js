// The demo page: join a room, watch pushes and publishes arrive, publish, call acme/rpc/sum.
// The WebSocket address: demo-config.js.
import { websocketUrl } from "./demo-config.js";
import { GosSocket } from "./gos-websocket.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function log(kind, text) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString("en-GB");
  const label = document.createElement("span");
  label.className = `kind ${kind}`;
  label.textContent = kind;
  const body = document.createElement("code");
  body.textContent = text;
  item.append(time, label, body);
  $("events").prepend(item);
  if (kind === "event") $("event-count").textContent = String(++log.events);
}
log.events = 0;

function showState(state, text = state) {
  $("connection").dataset.state = state;
  $("state").textContent = text;
  for (const button of document.querySelectorAll("#publish-form button, #rpc-form button")) {
    button.disabled = state !== "connected";
  }
}

const url = await websocketUrl();
$("endpoint").textContent = `WebSocket server: ${url}`;
const socket = GosSocket.connect(url, {
  retryDelay: Number(params.get("retryDelay") ?? 500),
  maxRetries: Number(params.get("maxRetries") ?? 30),
  maxRetryDelay: 4000,
});
window.gosSocket = socket; // for the console (and the browser tests)

let channel = null; // the room the page wants to be in, joined whenever connected

function onEvent(uri, payload) {
  // The WAMP pusher sends its data JSON-encoded as a string, as GOS does: show what it holds.
  if (typeof payload === "string") {
    try {
      payload = JSON.parse(payload);
    } catch {
      // a plain string event
    }
  }
  log("event", `${uri} ${JSON.stringify(payload)}`);
}

function join(room) {
  const next = `acme/channel/${room}`;
  if (socket.isConnected()) {
    if (channel !== null && channel !== next) socket.unsubscribeFromChannel(channel, onEvent);
    socket.subscribeToChannel(next, onEvent); // a no-op when already subscribed
  }
  if (channel !== next) log("system", `joined ${next}`);
  channel = next;
  $("channel").textContent = next;
  $("channel").dataset.subscribed = String(socket.isConnected());
}

socket.on("socket/connect", (session) => {
  showState("connected");
  log("system", `connected, session ${session.sessionId}`);
  // After a reconnect the client has re-subscribed already; this covers the first connect.
  if (channel !== null) join(channel.slice("acme/channel/".length));
});

socket.on("socket/disconnect", (error) => {
  if (error.delay !== undefined) {
    const seconds = (error.delay / 1000).toFixed(1);
    showState("reconnecting", `reconnecting in ${seconds}s (${error.retry}/${error.maxRetries})`);
  } else {
    showState("disconnected");
  }
  $("channel").dataset.subscribed = "false";
  log("system", `disconnected: ${error.reason} (code ${error.code})`);
});

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  join($("room").value.trim());
});

$("publish-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const message = $("message").value.trim();
  if (channel === null || message === "") return;
  socket.publishToTopic(channel, { msg: message });
  $("message").value = "";
});

$("rpc-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const numbers = $("numbers").value.split(/[\s,]+/).filter(Boolean).map(Number);
  const output = $("rpc-result");
  output.textContent = "...";
  try {
    const result = await socket.rpcCall("acme/rpc/sum", numbers);
    output.textContent = JSON.stringify(result);
    output.dataset.status = "ok";
  } catch (error) {
    output.textContent = `error: ${error.desc}`;
    output.dataset.status = "error";
  }
});

showState("connecting");
join(params.get("room") ?? $("room").value);
