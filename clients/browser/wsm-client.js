// A reconnecting browser client for libwsm's WebSocket protocol (wsm(7)):
// one session, resumed with ?lastSeq=&epoch= after every reconnect, with
// exponential backoff and full jitter, the server's retry_ms hints, and the
// close codes after which coming back would not help. No dependencies, no
// build step: an ES module for browsers, and for Node with an injected
// WebSocket. See README.md; the types are in wsm-client.d.ts.

/** The client's states; `state` events say when it moves. */
export const WsmState = Object.freeze({
  CONNECTING: 'connecting',
  OPEN: 'open',
  WAITING_RETRY: 'waiting-retry',
  CLOSED: 'closed',
});

/** The default path under which libwsm accepts upgrades (WSM_OPT_PATH_PREFIX). */
export const DEFAULT_PATH_PREFIX = '/api/images_mvp/progress/';

// Close codes after which the client stops: the session was closed on
// purpose (4003), a newer connection took this one's place and coming back
// would push it out in turn (4002), the server refused the registration
// (4005), or it found the client's frames unacceptable, which a retry would
// repeat (1003, 1007, 1009). Every other close is reconnected.
const STOP_CODES = new Map([
  [4003, 'session-closed'],
  [4002, 'evicted'],
  [4005, 'refused'],
  [1003, 'protocol'],
  [1007, 'protocol'],
  [1009, 'protocol'],
]);

// The server suggests a delay in the reason of lifetime (4001) and drain
// (1001) closes, as in "lifetime; retry_ms=4210"; it is already jittered.
const HINT = /(?:^|[;\s])retry_ms=([0-9]{1,9})(?:$|[;\s])/;

/**
 * The retry_ms hint of a close reason, or null.
 * @param {string} reason
 */
export function retryHint(reason) {
  const m = HINT.exec(typeof reason === 'string' ? reason : '');
  return m ? Number(m[1]) : null;
}

/**
 * Full jitter: a delay drawn uniformly from [0, min(cap, base * 2^attempt)).
 * attempt counts from 0, the first retry after a connection was lost.
 */
export function backoffDelay(attempt, baseMs, capMs, random = Math.random) {
  const bound = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * bound);
}

// A CustomEvent where there is one (browsers, Node 19+), else an Event with
// the same detail.
function makeEvent(type, detail) {
  if (typeof CustomEvent === 'function') return new CustomEvent(type, { detail });
  const event = new Event(type);
  Object.defineProperty(event, 'detail', { value: detail });
  return event;
}

function checkSeqEpoch(lastSeq, epoch) {
  if (lastSeq === undefined && epoch === undefined) return;
  if (!Number.isSafeInteger(lastSeq) || lastSeq < 0 ||
      !Number.isSafeInteger(epoch) || epoch < 1 || epoch > 0xffffffff)
    throw new RangeError('lastSeq and epoch go together: lastSeq an integer >= 0, ' +
                         'epoch an integer from 1 to 2^32-1');
}

// The session's WebSocket URL, without the resume arguments.
function sessionUrl(target) {
  const here = globalThis.location;
  if (typeof target === 'string' || target instanceof URL) {
    const url = new URL(String(target), here ? here.href : undefined);
    if (url.protocol === 'http:') url.protocol = 'ws:';
    else if (url.protocol === 'https:') url.protocol = 'wss:';
    return url;
  }
  if (!target || typeof target.sessionId !== 'string' || target.sessionId === '')
    throw new TypeError('the target is a URL or { sessionId, base?, pathPrefix? }');
  let base = target.base;
  if (base === undefined) {
    if (!here) throw new TypeError('no location to take the base from: pass base');
    base = (here.protocol === 'https:' ? 'wss://' : 'ws://') + here.host;
  }
  const prefix = target.pathPrefix ?? DEFAULT_PATH_PREFIX;
  return sessionUrl(String(base).replace(/\/+$/, '') + prefix +
                    encodeURIComponent(target.sessionId));
}

/**
 * Follows one session. Events (also given to the matching on* options):
 * "message" (every message taken), "progress", "error" (the job's error
 * message, not a connection failure), "complete", "reset", "state".
 */
export class WsmClient extends EventTarget {
  constructor(target, options = {}) {
    super();
    const o = options;
    this._url = sessionUrl(target);
    this._opts = o;
    this._base = o.backoff?.baseMs ?? 500;
    this._cap = o.backoff?.capMs ?? 10000;
    if (!(this._base > 0) || !(this._cap >= this._base))
      throw new RangeError('backoff: baseMs > 0 and capMs >= baseMs');
    this._stableMs = o.stableMs ?? 5000;
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function')
      throw new TypeError('no WebSocket: pass options.WebSocket');
    this._random = o.random ?? Math.random;
    this._setTimeout = o.setTimeout ?? globalThis.setTimeout.bind(globalThis);
    this._clearTimeout = o.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
    checkSeqEpoch(o.lastSeq, o.epoch);
    this._lastSeq = o.lastSeq ?? null;
    this._epoch = o.epoch ?? null;
    this._state = WsmState.CLOSED;
    this._ws = null;
    this._timer = null;     // the pending retry, or the stable-connection timer
    this._attempt = 0;      // retries since a connection last proved healthy
    this._lastClose = null;
    if (o.autoConnect !== false) this.connect();
  }

  /** One of WsmState's values. */
  get state() { return this._state; }
  /** seq of the last message taken, null before the first. */
  get lastSeq() { return this._lastSeq; }
  /** epoch of the last message taken, null before the first. */
  get epoch() { return this._epoch; }
  /** Consecutive failed connections since the last healthy one. */
  get attempt() { return this._attempt; }
  /** { code, reason, wasClean } of the last close of a connection, or null. */
  get lastClose() { return this._lastClose; }
  /** The URL the next connection will use, resume arguments included. */
  get url() {
    const url = new URL(this._url.href);
    if (this._lastSeq !== null && this._epoch !== null) {
      url.searchParams.set('lastSeq', String(this._lastSeq));
      url.searchParams.set('epoch', String(this._epoch));
    }
    return url.href;
  }

  /**
   * Connects now: at first, to skip a pending retry, or to start again
   * after the client closed (a 4003, say). Does nothing while connecting
   * or open.
   */
  connect() {
    if (this._state === WsmState.CONNECTING || this._state === WsmState.OPEN) return;
    this._cancelTimer();
    if (this._state === WsmState.CLOSED) this._attempt = 0;
    const url = this.url;
    let ws;
    try {
      ws = new this._WebSocket(url);
    } catch (err) {
      // A malformed URL, or a page policy: no retry would fix it.
      this._setState(WsmState.CLOSED, { why: 'failed', error: err });
      return;
    }
    this._ws = ws;
    this._heard = false;
    this._setState(WsmState.CONNECTING, { url, attempt: this._attempt });
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (event) => this._onMessage(ws, event);
    ws.onclose = (event) => this._onClose(ws, event);
    ws.onerror = () => {}; // a close always follows, with the code
  }

  /** Closes for good, with no more reconnects (until connect()). */
  close(code = 1000, reason = '') {
    this._finish({ why: 'closed' }, code, reason);
  }

  _emit(type, detail) {
    const handler = this._opts['on' + type[0].toUpperCase() + type.slice(1)];
    // An application callback that throws must not break the connection.
    try {
      if (typeof handler === 'function') {
        if (type === 'state') handler(detail.state, detail, this);
        else handler(detail, this);
      }
    } catch (err) {
      queueMicrotask(() => { throw err; });
    }
    this.dispatchEvent(makeEvent(type, detail));
  }

  _setState(state, detail = {}) {
    this._state = state;
    this._emit('state', { state, ...detail });
  }

  _cancelTimer() {
    if (this._timer !== null) this._clearTimeout(this._timer);
    this._timer = null;
  }

  _onOpen(ws) {
    if (ws !== this._ws) return;
    this._setState(WsmState.OPEN, { url: ws.url });
    // A connection that lasts is healthy even if the session is quiet.
    this._timer = this._setTimeout(() => { this._timer = null; this._attempt = 0; },
                                   this._stableMs);
  }

  _onMessage(ws, event) {
    if (ws !== this._ws || typeof event.data !== 'string') return;
    let msg;
    try { msg = JSON.parse(event.data); } catch { return; }
    if (!msg || typeof msg !== 'object') return;
    this._attempt = 0;
    if (msg.type === 'ping' && typeof msg.nonce === 'string') {
      // WSM_OPT_APP_PING: the echo, in one frame, is what keeps it alive.
      ws.send(JSON.stringify({ type: 'pong', nonce: msg.nonce }));
      return;
    }
    if (!Number.isSafeInteger(msg.seq) || !Number.isSafeInteger(msg.epoch)) return;
    if (msg.type === 'reset') {
      // A new life of the session: the replay that follows has seqs of at
      // most msg.seq, so take them all from 0 on.
      this._epoch = msg.epoch;
      this._lastSeq = 0;
      this._emit('reset', msg);
      this._emit('message', msg);
      return;
    }
    if (msg.epoch === this._epoch && this._lastSeq !== null && msg.seq <= this._lastSeq)
      return; // already taken, before a reconnect
    this._epoch = msg.epoch;
    this._lastSeq = msg.seq;
    this._emit('message', msg);
    if (msg.type === 'progress') this._emit('progress', msg);
    else if (msg.type === 'error' || msg.type === 'complete') {
      this._emit(msg.type, msg);
      // The job is over: nothing more will come on this session.
      if (this._ws === ws) this._finish({ why: msg.type }, 1000, 'job ' + msg.type);
    }
  }

  _onClose(ws, event) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._cancelTimer();
    const code = event.code, reason = event.reason || '';
    this._lastClose = { code, reason, wasClean: !!event.wasClean };
    const stop = STOP_CODES.get(code);
    if (stop) {
      this._setState(WsmState.CLOSED, { why: stop, code, reason });
      return;
    }
    const hint = code === 4001 || code === 1001 ? retryHint(reason) : null;
    const delayMs = hint ?? backoffDelay(this._attempt, this._base, this._cap, this._random);
    const detail = { code, reason, delayMs, hinted: hint !== null, attempt: this._attempt };
    // A hinted close ends a healthy connection: it does not count as a failure.
    if (hint === null) this._attempt++;
    this._timer = this._setTimeout(() => { this._timer = null; this.connect(); }, delayMs);
    this._setState(WsmState.WAITING_RETRY, detail);
  }

  _finish(detail, code, reason) {
    this._cancelTimer();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      // 0 CONNECTING, 1 OPEN: the constants are not on every injected class.
      if (ws.readyState === 0 || ws.readyState === 1) {
        try { ws.close(code, reason); } catch { ws.close(); } // a code it refuses
      }
    }
    if (this._state !== WsmState.CLOSED) this._setState(WsmState.CLOSED, detail);
  }
}

export default WsmClient;
