// The demo's private channels: two users, each with a demo token from /demo/token (served only
// when server.http.demo_tokens is on, as `make run` does), each subscribed to acme/user/{id}.
import { GosSocket } from "./gos-websocket.js";

const card = document.getElementById("private-card");
const params = new URLSearchParams(location.search);

async function demoToken(user) {
  const response = await fetch(`/demo/token?user=${encodeURIComponent(user)}`);
  if (!response.ok) throw new Error(`no demo token (${response.status})`);
  return (await response.json()).token;
}

async function websocketUrl() {
  if (params.has("ws")) return params.get("ws");
  const ws = (await import("./config.js")).default.ws;
  return `${ws.scheme}://${ws.host ?? location.hostname}:${ws.port}/`;
}

function showUser(element, url) {
  const user = element.dataset.user;
  const channel = `acme/user/${user}`;
  const title = document.createElement("h3");
  title.textContent = `user ${user}`;
  const state = document.createElement("p");
  state.className = "muted state";
  state.textContent = "connecting";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = `Push to ${user}`;
  const received = document.createElement("ol");
  element.append(title, state, button, received);

  const socket = GosSocket.connect(url, { retryDelay: 500, getToken: () => demoToken(user) });
  socket.on("socket/connect", () => {
    state.textContent = `connected as ${user}`;
    if (socket.channels().length === 0) {
      socket.subscribeToChannel(channel, (uri, payload) => {
        const item = document.createElement("li");
        item.textContent = JSON.stringify(payload);
        received.prepend(item);
      });
    }
  });
  socket.on("socket/disconnect", (info) => {
    state.textContent = `disconnected: ${info.reason}`;
  });
  button.addEventListener("click", () =>
    fetch(`/demo/push?user=${encodeURIComponent(user)}&msg=${encodeURIComponent(`hello ${user}`)}`),
  );
  window.privateSockets = { ...(window.privateSockets ?? {}), [user]: socket };
}

let demo = false;
try {
  demo = (await (await fetch("/demo/mode")).json()).demo_tokens === true;
} catch {
  // served by another web server: no demo tokens
}
if (demo) {
  card.hidden = false;
  const url = await websocketUrl();
  for (const element of card.querySelectorAll(".user")) showUser(element, url);
}
