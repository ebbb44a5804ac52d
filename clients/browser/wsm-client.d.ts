// Types of wsm-client.js: the reconnecting client of libwsm's WebSocket
// protocol (wsm(7)). See README.md.

export declare const WsmState: Readonly<{
  CONNECTING: 'connecting';
  OPEN: 'open';
  WAITING_RETRY: 'waiting-retry';
  CLOSED: 'closed';
}>;
export type WsmStateName = (typeof WsmState)[keyof typeof WsmState];

export declare const DEFAULT_PATH_PREFIX: string;

/** Fields every message of a session carries. */
interface WsmMessageBase {
  seq: number;
  epoch: number;
  sessionId: string;
  /** When the broadcast was made, in ms since the Unix epoch. */
  timestamp: number;
}
export interface WsmProgressMessage extends WsmMessageBase {
  type: 'progress';
  /** 0 to 100. */
  progress: number;
  message?: string;
  stage?: string;
}
export interface WsmErrorMessage extends WsmMessageBase {
  type: 'error';
  error: string;
}
export interface WsmCompleteMessage extends WsmMessageBase {
  type: 'complete';
  metadata: Record<string, unknown>;
}
/** The server holds another life of the session: drop what is shown. */
export interface WsmResetMessage extends WsmMessageBase {
  type: 'reset';
}
export type WsmMessage =
  | WsmProgressMessage
  | WsmErrorMessage
  | WsmCompleteMessage
  | WsmResetMessage;

/** Why the client is in the "closed" state. */
export type WsmClosedWhy =
  | 'closed'          // close() was called
  | 'complete'        // the job completed
  | 'error'           // the job failed
  | 'session-closed'  // 4003: the session was closed on the server
  | 'evicted'         // 4002: a newer connection took this one's place
  | 'refused'         // 4005: the server refused the registration
  | 'protocol'        // 1003, 1007, 1009: the server refused the frames
  | 'failed';         // the WebSocket constructor threw

export type WsmStateDetail =
  | { state: 'connecting'; url: string; attempt: number }
  | { state: 'open'; url: string }
  | {
      state: 'waiting-retry';
      code: number;
      reason: string;
      /** The wait before the next connection. */
      delayMs: number;
      /** Whether delayMs is the server's retry_ms hint (4001, 1001). */
      hinted: boolean;
      attempt: number;
    }
  | { state: 'closed'; why: WsmClosedWhy; code?: number; reason?: string; error?: unknown };

/** The target: a ws(s):// or http(s):// URL of the session, or its parts. */
export type WsmTarget =
  | string
  | URL
  | {
      sessionId: string;
      /** ws(s)://host[:port]; default: the page's own origin. */
      base?: string;
      /** Default DEFAULT_PATH_PREFIX. */
      pathPrefix?: string;
    };

/**
 * What the client needs of a WebSocket: the browser's, or an injected one.
 * The client sets the handlers; it reads event.data (a string) of messages
 * and event.code, event.reason and event.wasClean of closes. The events
 * are typed loosely so that the DOM's WebSocket, whose handlers take
 * MessageEvent and CloseEvent, fits.
 */
export interface WsmSocket {
  readonly readyState: number;
  readonly url: string;
  onopen: ((event: any) => any) | null;
  onmessage: ((event: any) => any) | null;
  onclose: ((event: any) => any) | null;
  onerror: ((event: any) => any) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WsmSocketConstructor = new (url: string) => WsmSocket;

export interface WsmClientOptions {
  onMessage?: (message: WsmMessage, client: WsmClient) => void;
  onProgress?: (message: WsmProgressMessage, client: WsmClient) => void;
  /** The job's error message; the client then closes. */
  onError?: (message: WsmErrorMessage, client: WsmClient) => void;
  /** The job's complete message; the client then closes. */
  onComplete?: (message: WsmCompleteMessage, client: WsmClient) => void;
  onReset?: (message: WsmResetMessage, client: WsmClient) => void;
  onState?: (state: WsmStateName, detail: WsmStateDetail, client: WsmClient) => void;
  /** Full-jitter backoff: retry n waits random(0, min(capMs, baseMs * 2^n)).
   *  Defaults 500 and 10000. */
  backoff?: { baseMs?: number; capMs?: number };
  /** A connection open this long resets the backoff. Default 5000. */
  stableMs?: number;
  /** Resume from a known position (both or neither), e.g. from sessionStorage. */
  lastSeq?: number;
  epoch?: number;
  /** Connect in the constructor. Default true. */
  autoConnect?: boolean;
  /** Injection, for tests and Node. Defaults: globalThis's. */
  WebSocket?: WsmSocketConstructor;
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: any) => void;
}

export interface WsmClientEventMap {
  message: CustomEvent<WsmMessage>;
  progress: CustomEvent<WsmProgressMessage>;
  error: CustomEvent<WsmErrorMessage>;
  complete: CustomEvent<WsmCompleteMessage>;
  reset: CustomEvent<WsmResetMessage>;
  state: CustomEvent<WsmStateDetail>;
}

export declare class WsmClient extends EventTarget {
  constructor(target: WsmTarget, options?: WsmClientOptions);
  readonly state: WsmStateName;
  readonly lastSeq: number | null;
  readonly epoch: number | null;
  readonly attempt: number;
  readonly lastClose: { code: number; reason: string; wasClean: boolean } | null;
  /** The URL of the next connection, ?lastSeq=&epoch= included. */
  readonly url: string;
  connect(): void;
  close(code?: number, reason?: string): void;
  addEventListener<K extends keyof WsmClientEventMap>(
    type: K,
    listener: (this: WsmClient, event: WsmClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof WsmClientEventMap>(
    type: K,
    listener: (this: WsmClient, event: WsmClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

/** The retry_ms hint of a close reason ("lifetime; retry_ms=4210"), or null. */
export declare function retryHint(reason: string): number | null;
/** random() * min(capMs, baseMs * 2^attempt), rounded down. */
export declare function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random?: () => number,
): number;

export default WsmClient;
