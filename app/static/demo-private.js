// The demo's private channels: two users, each with a demo token from /demo/token (served only
// when server.http.demo_tokens is on, as `make run` does), each subscribed to acme/user/{id}.
import { websocketUrl } from "./demo-config.js";
import { GosSocket } from "./gos-websocket.js";

const card = document.getElementById("private-card");

async function demoToken(user) {
  const response = await fetch(`/demo/token?user=${encodeURIComponent(user)}`);
  if (!response.ok) throw new Error(`no demo token (${response.status})`);
  return (await response.json()).token;
}

// The presence card's room: entering subscribes this user's socket to it (a member), leaving
// unsubscribes; the card shows the user come and go.
const presenceRoom = document.getElementById("presence-card").dataset.room;
const inRoom = () => {};

function toggleRoom(socket, button) {
  if (!socket.isConnected()) return;
  const entering = !socket.channels().includes(presenceRoom);
  if (entering) socket.subscribeToChannel(presenceRoom, inRoom);
  else socket.unsubscribeFromChannel(presenceRoom, inRoom);
  button.textContent = entering ? "Leave the room" : "Enter the room";
  button.dataset.inside = String(entering);
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
  const enter = document.createElement("button");
  enter.type = "button";
  enter.className = "enter";
  enter.textContent = "Enter the room";
  const received = document.createElement("ol");
  element.append(title, state, button, enter, received);

  const socket = GosSocket.connect(url, { retryDelay: 500, getToken: () => demoToken(user) });
  socket.on("socket/connect", () => {
    state.textContent = `connected as ${user}`;
    if (!socket.channels().includes(channel)) {
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
  enter.addEventListener("click", () => toggleRoom(socket, enter));
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
