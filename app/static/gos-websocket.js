// gos-websocket.js: a WAMP v1 browser client with the API of GosWebSocketBundle's GosSocket.
// One ES module, no build step, no dependencies:
//
//   import { GosSocket } from "/static/gos-websocket.js";
//   const socket = GosSocket.connect("ws://127.0.0.1:1337/", { retryDelay: 1000 });
//   socket.on("socket/connect", () => socket.subscribeToChannel("acme/channel/lobby", (uri, payload) => {}));
//
// Beyond the GOS client it re-subscribes its channels and re-sends its prefixes after a reconnect,
// so a page survives a server restart without code of its own.
//
// It offers WAMP v2 (wamp.2.json) first and WAMP v1 (wamp) second, and speaks what the server
// chose; the API is the same. Over v2 it recovers by itself (docs/streams.md): every EVENT of a
// channel with history carries its position, a re-subscription after a reconnect asks for what
// was missed since the last one, gets it in order before the live events (none twice), and
// fires "socket/recovery" with {uri, recovered, replayed}; recovered: false means pushes were
// lost (history too short, server epoch changed): reload that channel's state. `protocols:
// ["wamp"]` keeps a page on v1 (GOS's own client: no recovery).
//
// Authentication (docs/auth.md): `token` is sent as the `?token=` query parameter; `getToken()`
// (may return a Promise) is asked for a fresh one before the first connection when there is no
// `token`, when the server closes with 4001 (token expired), and after a refused handshake.
//
//   GosSocket.connect(url, { getToken: async () => (await (await fetch("/ws-token")).json()).token });

const WELCOME = 0;
const PREFIX = 1;
const CALL = 2;
const CALLRESULT = 3;
const CALLERROR = 4;
const SUBSCRIBE = 5;
const UNSUBSCRIBE = 6;
const PUBLISH = 7;
const EVENT = 8;

// WAMP v2 message codes (the Basic Profile).
const V2 = {
  HELLO: 1, WELCOME: 2, ABORT: 3, GOODBYE: 6, ERROR: 8, PUBLISH: 16,
  SUBSCRIBE: 32, SUBSCRIBED: 33, UNSUBSCRIBE: 34, UNSUBSCRIBED: 35, EVENT: 36,
  CALL: 48, RESULT: 50,
};
const V2_ROLES = { subscriber: {}, publisher: { features: { publisher_exclusion: true } }, caller: {} };

// The hangup codes of AutobahnJS 0.8, which GOS pages may already test for.
export const CONNECTION_CLOSED = 0;
export const CONNECTION_LOST = 1;
export const CONNECTION_RETRIES_EXCEEDED = 2;
export const CONNECTION_UNREACHABLE = 3;
export const CONNECTION_UNSUPPORTED = 4;
export const CONNECTION_UNREACHABLE_SCHEDULED_RECONNECT = 5;
export const CONNECTION_LOST_SCHEDULED_RECONNECT = 6;

export const CONNECTION_LOST_URI = "gos:error#connection-lost";

/** The server's close code when the token's `exp` passed (app.auth.CLOSE_TOKEN_EXPIRED). */
export const CLOSE_TOKEN_EXPIRED = 4001;

const DEFAULTS = {
  retryDelay: 5000, // ms before the first retry (GOS default)
  maxRetries: 10, // retries after a failure; 0 disables reconnecting (GOS default 10)
  backoffFactor: 2, // each retry waits this much longer than the one before
  maxRetryDelay: 60000, // ms; the backoff stops growing here
  skipSubprotocolCheck: false,
  skipSubprotocolAnnounce: false,
  token: null, // a JWT for the server's jwt provider, sent as ?token=
  getToken: null, // () => token or Promise<token>: asked again when the token expired
  tokenParameter: "token",
  protocols: ["wamp.2.json", "wamp"], // offered in this order; the server picks one
  realm: "realm1", // the v2 realm (server.realm)
};

/** A WAMP v1 connection that reconnects by itself; create it with GosSocket.connect(). */
export class GosSocket {
  /** Open a connection to `uri` (ws:// or wss://) and keep it open; returns the socket. */
  static connect(uri, sessionConfig = {}) {
    const socket = new GosSocket(uri, sessionConfig);
    socket.open();
    return socket;
  }

  constructor(uri, sessionConfig = {}) {
    this.uri = uri;
    this.config = { ...DEFAULTS, ...sessionConfig };
    this.sessionId = null;
    this.serverIdent = null;
    this._ws = null;
    this._listeners = new Map(); // event name -> Set of callbacks
    this._channels = new Map(); // resolved URI -> { uri as given, callbacks, position, ... }
    this._subscriptions = new Map(); // v2 subscription id -> channel
    this._requests = new Map(); // v2 request id -> what its answer settles
    this._nextRequest = 1;
    this.protocol = null; // "wamp.2.json" or "wamp" once connected
    this._prefixes = new Map(); // curie -> uri
    this._calls = new Map(); // call id -> { resolve, reject, uri }
    this._retries = 0;
    this._retryTimer = null;
    this._closing = false;
    this._token = this.config.token;
    this._needToken = !this._token && typeof this.config.getToken === "function";
  }

  // ---- events -------------------------------------------------------------------------------

  /** Listen to "socket/connect" (the socket) or "socket/disconnect" ({code, reason, ...}). */
  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(listener);
    return this;
  }

  off(event, listener) {
    this._listeners.get(event)?.delete(listener);
    return this;
  }

  _fire(event, data) {
    for (const listener of [...(this._listeners.get(event) ?? [])]) {
      try {
        listener(data);
      } catch (error) {
        console.error(`gos-websocket: a ${event} listener failed`, error);
      }
    }
  }

  // ---- connection ---------------------------------------------------------------------------

  /** True once the server's WELCOME arrived and until the connection drops. */
  isConnected() {
    return this.sessionId !== null && this._ws?.readyState === WebSocket.OPEN;
  }

  /** Start connecting (GosSocket.connect calls this); a no-op while a connection is open. */
  open() {
    this._closing = false;
    if (this._ws !== null) return;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (this._needToken) {
      this._refreshToken();
      return;
    }
    const protocols = this.config.skipSubprotocolAnnounce ? [] : this.config.protocols;
    let ws;
    try {
      ws = new WebSocket(this._url(), protocols);
    } catch (error) {
      // A malformed URI can never work: say so once, do not retry.
      this._fire("socket/disconnect", { code: CONNECTION_UNSUPPORTED, reason: String(error) });
      return;
    }
    this._ws = ws;
    let welcomed = false;
    ws.onopen = () => {
      this.protocol = ws.protocol === "wamp.2.json" ? ws.protocol : "wamp";
      if (!this.config.skipSubprotocolCheck && !this.config.protocols.includes(ws.protocol)) {
        ws.close(1002, "server did not agree on a wamp subprotocol");
      } else if (this.protocol !== "wamp") {
        this._send([V2.HELLO, this.config.realm, { roles: V2_ROLES }]);
      }
    };
    ws.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        ws.close(1007, "frame is not JSON");
        return;
      }
      if (!Array.isArray(frame)) {
        ws.close(1007, "frame is not a JSON array");
        return;
      }
      const v2 = this.protocol !== "wamp";
      if (frame[0] === (v2 ? V2.WELCOME : WELCOME)) {
        if (welcomed) {
          ws.close(1002, "second WELCOME");
          return;
        }
        welcomed = true;
        this._welcome(v2 ? [WELCOME, frame[1], 2, frame[2]?.agent] : frame);
      } else if (v2 && frame[0] === V2.ABORT) {
        ws.close(1000, "aborted");
      } else if (welcomed) {
        if (v2) this._dispatch2(frame);
        else this._dispatch(frame);
      }
    };
    ws.onclose = (close) => this._closed(ws, welcomed, close);
  }

  /** The URI with the current token as its query parameter (the URI itself without one). */
  _url() {
    if (!this._token) return this.uri;
    const url = new URL(this.uri);
    url.searchParams.set(this.config.tokenParameter, this._token);
    return url.toString();
  }

  /** Ask the page for a token, then connect; a failure counts as an unreachable server. */
  _refreshToken() {
    this._needToken = false;
    Promise.resolve()
      .then(() => this.config.getToken())
      .then(
        (token) => {
          this._token = token;
          if (!this._closing) this.open();
        },
        (error) => {
          console.warn("gos-websocket: getToken() failed", error);
          this._needToken = true;
          this._ws = { readyState: WebSocket.CLOSED }; // let _closed schedule the retry
          this._closed(this._ws, false, { wasClean: false, code: 1006 });
        },
      );
  }

  /** Close for good: no reconnect; pending calls reject. */
  close() {
    this._closing = true;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._ws?.close(1000);
  }

  _welcome([, sessionId, , serverIdent]) {
    this.sessionId = String(sessionId);
    this.serverIdent = serverIdent ?? null;
    this._retries = 0;
    // Restore what the previous connection had: prefixes first, as later URIs may use them.
    if (this.protocol === "wamp") {
      for (const [curie, uri] of this._prefixes) this._send([PREFIX, curie, uri]);
    }
    for (const channel of this._channels.values()) this._subscribe(channel, true);
    this._fire("socket/connect", this);
  }

  _closed(ws, welcomed, close) {
    if (this._ws !== ws) return;
    this._ws = null;
    this.sessionId = null;
    const lost = { uri: CONNECTION_LOST_URI, desc: "connection lost", details: null };
    for (const call of this._calls.values()) call.reject(lost);
    this._calls.clear();
    for (const request of this._requests.values()) request.reject?.(lost);
    this._requests.clear();
    this._subscriptions.clear();
    for (const channel of this._channels.values()) channel.subscription = null;

    const detail = { wasClean: close.wasClean, closeCode: close.code };
    if (this._closing) {
      this._fire("socket/disconnect", { code: CONNECTION_CLOSED, reason: "closed", ...detail });
      return;
    }
    const canRefresh = typeof this.config.getToken === "function";
    if (canRefresh && (close.code === CLOSE_TOKEN_EXPIRED || !welcomed)) this._needToken = true;
    if (canRefresh && close.code === CLOSE_TOKEN_EXPIRED) {
      // Not a failure: reconnect at once with a fresh token.
      this._fire("socket/disconnect", {
        code: CONNECTION_LOST_SCHEDULED_RECONNECT,
        reason: "token expired",
        retry: 0,
        delay: 0,
        ...detail,
      });
      this.open();
      return;
    }
    if (this._retries >= this.config.maxRetries) {
      const code = this.config.maxRetries > 0 ? CONNECTION_RETRIES_EXCEEDED : CONNECTION_LOST;
      const reason = welcomed ? "connection lost" : "maximum number of retries exceeded";
      this._fire("socket/disconnect", { code, reason, ...detail });
      return;
    }
    const delay = Math.min(
      this.config.retryDelay * this.config.backoffFactor ** this._retries,
      this.config.maxRetryDelay,
    );
    this._retries += 1;
    this._fire("socket/disconnect", {
      code: welcomed
        ? CONNECTION_LOST_SCHEDULED_RECONNECT
        : CONNECTION_UNREACHABLE_SCHEDULED_RECONNECT,
      reason: welcomed ? "connection lost" : "server unreachable",
      retry: this._retries,
      maxRetries: this.config.maxRetries,
      delay,
      ...detail,
    });
    this._retryTimer = setTimeout(() => this.open(), delay);
  }

  _send(frame) {
    this._ws.send(JSON.stringify(frame));
  }

  _requireSession() {
    if (!this.isConnected()) throw new Error("GosSocket is not connected");
  }

  // ---- WAMP v2 ------------------------------------------------------------------------------

  /** Send `frame` built for a fresh request id; `settle` gets the answer. */
  _request(build, settle = {}) {
    const id = this._nextRequest++;
    this._requests.set(id, settle);
    this._send(build(id));
    return id;
  }

  /** (Re)subscribe `channel`; over v2 with `_recover`: its last position, or true at first. */
  _subscribe(channel, again = false) {
    if (this.protocol === "wamp") {
      this._send([SUBSCRIBE, channel.uri]);
      return;
    }
    const key = this.resolve(channel.uri);
    channel.recovering = again;
    channel.hadPosition = channel.position !== null;
    const options = { _recover: channel.position ?? true };
    this._request((id) => [V2.SUBSCRIBE, id, options, key], { channel });
  }

  _dispatch2(frame) {
    const type = frame[0];
    if (type === V2.EVENT) {
      const channel = this._subscriptions.get(frame[1]);
      if (channel === undefined) return; // not (yet) subscribed: a recovery replays it
      const details = frame[3] ?? {};
      if (details._recovery !== undefined) {
        this._recovered(channel, details._recovery);
        return;
      }
      const position = details._position;
      if (position !== undefined) {
        const last = channel.position;
        if (last && last.epoch === position.epoch && position.offset <= last.offset) return;
        channel.position = position;
      }
      const [args, kwargs] = [frame[4] ?? [], frame[5]];
      const payload = kwargs && args.length === 0 ? kwargs : args.length === 1 ? args[0] : args;
      this._deliver(channel, this.resolve(channel.uri), payload);
      return;
    }
    const request = this._requests.get(frame[type === V2.ERROR ? 2 : 1]);
    if (request === undefined) return;
    this._requests.delete(frame[type === V2.ERROR ? 2 : 1]);
    if (type === V2.SUBSCRIBED) {
      if (this._channels.get(this.resolve(request.channel.uri)) !== request.channel) {
        this._request((id) => [V2.UNSUBSCRIBE, id, frame[2]]); // left before the answer
        return;
      }
      request.channel.subscription = frame[2];
      this._subscriptions.set(frame[2], request.channel);
    } else if (type === V2.RESULT) {
      const [args, kwargs] = [frame[3] ?? [], frame[4]];
      // As v1's CALLRESULT: the server sends a returned list as the arguments, a dict as one.
      const one = args.length === 1 && args[0] !== null && typeof args[0] === "object";
      const value = kwargs && args.length === 0 ? kwargs : one && !Array.isArray(args[0]) ? args[0] : args;
      request.resolve?.(value);
    } else if (type === V2.ERROR) {
      // GOS's shape (uri: what was called), with the v2 error URI beside it.
      const desc = frame[5]?.[0] ?? "";
      const error = { uri: request.uri ?? frame[4], desc, details: frame[6] ?? null, error: frame[4] };
      if (request.reject) request.reject(error);
      else console.warn(`gos-websocket: ${error.uri}: ${error.desc}`);
    }
  }

  /** The answer to `_recover`: where the channel stands, and whether nothing was lost. */
  _recovered(channel, report) {
    const position = report.position ?? null;
    if (position !== null) {
      const last = channel.position;
      if (!last || last.epoch !== position.epoch || position.offset > last.offset) {
        channel.position = position;
      }
    }
    if (!channel.recovering) return;
    channel.recovering = false;
    const recovered = Boolean(report.recovered) && channel.hadPosition;
    this._fire("socket/recovery", {
      uri: channel.uri,
      recovered,
      replayed: report.replayed ?? 0,
      position: channel.position,
    });
  }

  // ---- frames from the server ---------------------------------------------------------------

  _dispatch(frame) {
    const [type, id] = frame;
    if (type === EVENT) {
      this._deliver(this._channels.get(this.resolve(id)), id, frame[2]);
    } else if (type === CALLRESULT || type === CALLERROR) {
      const call = this._calls.get(id);
      if (call === undefined) return; // e.g. GOS topic errors carry the topic in the id slot
      this._calls.delete(id);
      if (type === CALLRESULT) {
        call.resolve(frame[2]);
      } else {
        const error = { uri: frame[2], desc: frame[3], details: frame[4] ?? null };
        if (frame.length > 4) error.detail = frame[4]; // AutobahnJS 0.8 spelling
        call.reject(error);
      }
    }
  }

  _deliver(channel, uri, payload) {
    for (const callback of [...(channel?.callbacks ?? [])]) {
      try {
        callback(uri, payload);
      } catch (error) {
        console.error(`gos-websocket: a callback for ${uri} failed`, error);
      }
    }
  }

  // ---- PREFIX -------------------------------------------------------------------------------

  /** Define a CURIE prefix (`prefix("event", "http://example.com/event#")`) for later URIs. */
  prefix(curie, uri) {
    this._prefixes.set(curie, uri);
    if (this.isConnected() && this.protocol === "wamp") this._send([PREFIX, curie, uri]);
  }

  /**
   * The full URI for a CURIE: prefix URI + reference, as the WAMP v1 spec, AutobahnJS and our
   * server do (`prefix("room", "acme/channel/")` makes "room:42" mean "acme/channel/42").
   * URIs with `://` and unknown prefixes come back unchanged.
   */
  resolve(uri) {
    const at = uri.indexOf(":");
    if (at < 0 || uri.startsWith("//", at + 1)) return uri;
    const prefix = this._prefixes.get(uri.slice(0, at));
    return prefix === undefined ? uri : prefix + uri.slice(at + 1);
  }

  // ---- pub/sub ------------------------------------------------------------------------------

  /** Call `callback(uri, payload)` for each event on `uri`; re-subscribed after reconnects. */
  subscribeToChannel(uri, callback) {
    this._requireSession();
    const key = this.resolve(uri);
    let channel = this._channels.get(key);
    if (channel === undefined) {
      channel = { uri, callbacks: new Set(), position: null, subscription: null };
      this._channels.set(key, channel);
      this._subscribe(channel);
    }
    channel.callbacks.add(callback); // the same callback twice is one subscription (GOS swallows)
  }

  /** Drop `callback` (or every callback when omitted); the last one leaves the channel. */
  unsubscribeFromChannel(uri, callback) {
    this._requireSession();
    const key = this.resolve(uri);
    const channel = this._channels.get(key);
    if (channel === undefined) return; // not subscribed: GOS swallows the error
    if (callback === undefined) channel.callbacks.clear();
    else channel.callbacks.delete(callback);
    if (channel.callbacks.size === 0) {
      this._channels.delete(key);
      if (this.protocol === "wamp") {
        this._send([UNSUBSCRIBE, uri]);
      } else if (channel.subscription !== null) {
        this._subscriptions.delete(channel.subscription);
        this._request((id) => [V2.UNSUBSCRIBE, id, channel.subscription]);
      }
    }
  }

  /** The last position seen on `uri` ({epoch, offset}), or null (v1, or no history). */
  position(uri) {
    return this._channels.get(this.resolve(uri))?.position ?? null;
  }

  /** The channels this socket is subscribed to (as given to subscribeToChannel). */
  channels() {
    return [...this._channels.values()].map((channel) => channel.uri);
  }

  /**
   * Publish `data` on `uri`. Options: `excludeMe` (bool), `exclude` and `eligible` (lists of
   * session ids); without options the frame has three elements, as AutobahnJS sends it.
   */
  publishToTopic(uri, data = {}, { excludeMe = false, exclude, eligible } = {}) {
    this._requireSession();
    if (this.protocol !== "wamp") {
      const options = { exclude_me: Boolean(excludeMe) };
      if (exclude !== undefined) options.exclude = exclude.map(Number);
      if (eligible !== undefined) options.eligible = eligible.map(Number);
      // Without acknowledge the router answers nothing: the id is not kept.
      this._send([V2.PUBLISH, this._nextRequest++, options, this.resolve(uri), [data]]);
      return;
    }
    const frame = [PUBLISH, uri, data];
    if (eligible !== undefined) frame.push(exclude ?? [], eligible);
    else if (exclude !== undefined) frame.push(exclude);
    else if (excludeMe) frame.push(true);
    this._send(frame);
  }

  // ---- RPC ----------------------------------------------------------------------------------

  /**
   * Call procedure `uri` with `data`; resolves with what the handler returned, rejects with
   * {uri, desc, details}. The server sends a returned `3` as `[3]` (GOS's CALLRESULT); a
   * one-element list is unwrapped, so a handler that returned `[3]` resolves to `3` too:
   * `{ raw: true }` resolves with the list as sent.
   */
  rpcCall(uri, data = {}, { raw = false } = {}) {
    this._requireSession();
    let id;
    do id = Math.random().toString(36).slice(2);
    while (this._calls.has(id));
    return new Promise((resolve, reject) => {
      const unwrap = (result) =>
        !raw && Array.isArray(result) && result.length === 1 ? result[0] : result;
      if (this.protocol !== "wamp") {
        const settle = { resolve: (result) => resolve(unwrap(result)), reject, uri };
        const procedure = this.resolve(uri);
        this._request((request) => [V2.CALL, request, {}, procedure, [data]], settle);
        return;
      }
      this._calls.set(id, { resolve: (result) => resolve(unwrap(result)), reject, uri });
      this._send([CALL, id, uri, data]);
    });
  }
}

/** Same as GosSocket.connect. */
export function connect(uri, sessionConfig = {}) {
  return GosSocket.connect(uri, sessionConfig);
}

// The deprecated GOS names, for pages written against them.
export const WS = { connect };
export const Socket = GosSocket;
export default GosSocket;
