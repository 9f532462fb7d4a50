// Where the demo's sockets connect: ?ws=... on the page's address, else /config.js (served beside
// the page), else the default port on the page's host (the page served by some other server).
const params = new URLSearchParams(location.search);

export async function websocketUrl() {
  if (params.has("ws")) return params.get("ws");
  let ws = { scheme: "ws", host: null, port: 1337 };
  try {
    ws = (await import("./config.js")).default.ws;
  } catch {
    // Served by some other web server: assume the default port on the page's host.
  }
  return `${ws.scheme}://${ws.host ?? location.hostname}:${ws.port}/`;
}
