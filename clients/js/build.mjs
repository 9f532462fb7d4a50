// Build the package from the client the server ships (app/static): dist/ holds
//   gos-websocket.js         the ES module, as served at /static/gos-websocket.js
//   gos-websocket.d.ts       its declarations
//   gos-websocket.global.js  a plain <script> build: window.GosWebSocket (every export) and
//                            window.WS (GOS's global, WS.connect)
// `npm pack` runs it (prepack). esbuild comes from this folder's node_modules or NODE_PATH.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const esbuild = require("esbuild");
const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const source = here("../../app/static/");
const dist = here("./dist/");

mkdirSync(dist, { recursive: true });
for (const name of ["gos-websocket.js", "gos-websocket.d.ts"]) {
  copyFileSync(source + name, dist + name);
}
esbuild.buildSync({
  entryPoints: [source + "gos-websocket.js"],
  outfile: dist + "gos-websocket.global.js",
  bundle: true,
  format: "iife",
  globalName: "GosWebSocket",
  footer: { js: "window.WS = window.WS || GosWebSocket.WS;" },
  target: "es2020",
  legalComments: "inline",
});
console.log(`built ${dist}`);
