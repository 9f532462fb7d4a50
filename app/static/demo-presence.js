// The demo's presence card: who is in acme/room/lobby, live. Its own socket watches the
// companion channel gos/presence/acme/room/lobby (the state at once, then one diff of joins and
// leaves per window) and asks gos/presence for the whole answer on demand. Watching is not being
// a member: this page does not appear in the list.
import { websocketUrl } from "./demo-config.js";
import { GosSocket } from "./gos-websocket.js";

const $ = (id) => document.getElementById(id);
const ROOM = $("presence-card").dataset.room; // acme/room/lobby
const WATCH = `gos/presence/${ROOM}`;
const members = new Map(); // user id -> info

function render(numUsers) {
  const list = $("members");
  list.replaceChildren(
    ...[...members.keys()].sort().map((user) => {
      const item = document.createElement("li");
      item.dataset.user = user;
      item.textContent = `user ${user}`;
      return item;
    }),
  );
  $("member-count").textContent = String(numUsers ?? members.size);
}

function onPresence(uri, payload) {
  if (payload.state !== undefined) {
    // the first frame, and again after a reconnect: the whole answer replaces what was shown
    members.clear();
    for (const [user, entry] of Object.entries(payload.state.users)) members.set(user, entry.info);
    $("presence-clients").textContent = String(payload.state.num_clients);
    render(payload.state.num_users);
    return;
  }
  // a diff may repeat what the state showed: apply it as set operations
  for (const [user, entry] of Object.entries(payload.joins)) members.set(user, entry.info);
  for (const user of payload.leaves) members.delete(user);
  render(payload.num_users);
}

const socket = GosSocket.connect(await websocketUrl(), { retryDelay: 500, maxRetries: 30 });
window.presenceSocket = socket; // for the console (and the browser tests)
socket.on("socket/connect", () => {
  $("presence-card").dataset.watching = "true";
  if (socket.channels().length === 0) socket.subscribeToChannel(WATCH, onPresence);
});
socket.on("socket/disconnect", () => {
  $("presence-card").dataset.watching = "false";
});
$("presence-refresh").addEventListener("click", async () => {
  try {
    const answer = await socket.rpcCall("gos/presence", ROOM);
    onPresence(WATCH, { state: answer });
  } catch (error) {
    $("presence-clients").textContent = `error: ${error.desc}`;
  }
});
