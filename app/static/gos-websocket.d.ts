// Type declarations of gos-websocket.js, the WAMP v1/v2 browser client (docs/client.md).
// With the types `gos-websocket catalogue` writes (channels.d.ts), a page names its payloads:
//
//   import type { PayloadOf } from "./catalogue/channels";
//   socket.subscribeToChannel<PayloadOf<"acme_chat">>("acme/chat/lobby", (uri, message) => {});

/** The hangup codes of AutobahnJS 0.8, in `socket/disconnect`'s `code`. */
export declare const CONNECTION_CLOSED: 0;
export declare const CONNECTION_LOST: 1;
export declare const CONNECTION_RETRIES_EXCEEDED: 2;
export declare const CONNECTION_UNREACHABLE: 3;
export declare const CONNECTION_UNSUPPORTED: 4;
export declare const CONNECTION_UNREACHABLE_SCHEDULED_RECONNECT: 5;
export declare const CONNECTION_LOST_SCHEDULED_RECONNECT: 6;
/** The `uri` of the error pending calls reject with when the connection drops. */
export declare const CONNECTION_LOST_URI: "gos:error#connection-lost";
/** The server's close code when the token's `exp` passed. */
export declare const CLOSE_TOKEN_EXPIRED: 4001;

export type Subprotocol = "wamp.2.json" | "wamp";

export interface SessionConfig {
  /** ms before the first retry (default 5000). */
  retryDelay?: number;
  /** Retries after a failure; 0 disables reconnecting (default 10). */
  maxRetries?: number;
  /** Each retry waits this much longer than the one before (default 2). */
  backoffFactor?: number;
  /** ms; the backoff stops growing here (default 60000). */
  maxRetryDelay?: number;
  skipSubprotocolCheck?: boolean;
  skipSubprotocolAnnounce?: boolean;
  /** A JWT for the server's jwt provider, sent as `?token=`. */
  token?: string | null;
  /** Asked for a fresh token before connecting without one and when it expired. */
  getToken?: (() => string | Promise<string>) | null;
  /** The query parameter of the token (default "token"). */
  tokenParameter?: string;
  /** Offered in this order; the server picks one (default ["wamp.2.json", "wamp"]). */
  protocols?: Subprotocol[];
  /** The WAMP v2 realm (default "realm1"). */
  realm?: string;
}

/** Where an event is in its channel's history (WAMP v2). */
export interface Position {
  epoch: string;
  offset: number;
}

export interface DisconnectEvent {
  code: number;
  reason: string;
  wasClean?: boolean;
  closeCode?: number;
  retry?: number;
  maxRetries?: number;
  delay?: number;
}

export interface RecoveryEvent {
  uri: string;
  /** False: pushes were lost while away; reload the channel's state. */
  recovered: boolean;
  replayed: number;
  position: Position | null;
}

/** What a refused call rejects with (GOS's shape; `error` is the WAMP v2 error URI). */
export interface CallError {
  uri: string;
  desc: string;
  details: unknown;
  error?: string;
  detail?: unknown;
}

export interface SocketEvents {
  "socket/connect": GosSocket;
  "socket/disconnect": DisconnectEvent;
  "socket/recovery": RecoveryEvent;
}

export type ChannelCallback<T = unknown> = (uri: string, payload: T) => void;

export interface PublishOptions {
  excludeMe?: boolean;
  /** Session ids that must not receive it. */
  exclude?: Array<string | number>;
  /** The only session ids that may receive it. */
  eligible?: Array<string | number>;
}

/** A WAMP connection that reconnects by itself; create it with `GosSocket.connect()`. */
export declare class GosSocket {
  static connect(uri: string, sessionConfig?: SessionConfig): GosSocket;
  constructor(uri: string, sessionConfig?: SessionConfig);
  readonly uri: string;
  readonly config: Required<SessionConfig>;
  /** Set once the server's WELCOME arrived; null while disconnected. */
  sessionId: string | null;
  serverIdent: string | null;
  /** The subprotocol the server chose, once connected. */
  protocol: Subprotocol | null;
  on<E extends keyof SocketEvents>(event: E, listener: (data: SocketEvents[E]) => void): this;
  off<E extends keyof SocketEvents>(event: E, listener: (data: SocketEvents[E]) => void): this;
  isConnected(): boolean;
  open(): void;
  /** Close for good: no reconnect; pending calls reject. */
  close(): void;
  prefix(curie: string, uri: string): void;
  resolve(uri: string): string;
  /** `callback(uri, payload)` for each event on `uri`; re-subscribed after reconnects. */
  subscribeToChannel<T = unknown>(uri: string, callback: ChannelCallback<T>): void;
  unsubscribeFromChannel<T = unknown>(uri: string, callback?: ChannelCallback<T>): void;
  position(uri: string): Position | null;
  channels(): string[];
  publishToTopic<T = unknown>(uri: string, data?: T, options?: PublishOptions): void;
  /** Resolves with what the handler returned; rejects with a `CallError`. */
  rpcCall<R = unknown>(uri: string, data?: unknown, options?: { raw?: boolean }): Promise<R>;
}

/** Same as `GosSocket.connect`. */
export declare function connect(uri: string, sessionConfig?: SessionConfig): GosSocket;
/** The deprecated GOS names, for pages written against them. */
export declare const WS: { connect: typeof connect };
export declare const Socket: typeof GosSocket;
export default GosSocket;
