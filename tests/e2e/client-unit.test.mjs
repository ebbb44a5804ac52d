// clients/browser/wsm-client.js in Node, with an injected WebSocket, timers
// and Math.random: the full-jitter bounds, the retry_ms hints taken as
// they are, resume URLs, duplicates and resets, the JSON ping, the close
// codes that stop it, close(). No server and no browser: the protocol side
// is in client.test.mjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  WsmClient, WsmState, backoffDelay, retryHint,
} from '../../clients/browser/wsm-client.js';

// A WebSocket the test drives: it records what the client sends and lets
// the test open, feed and close it.
class FakeSocket {
  static made = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.made.push(this);
  }
  send(data) { this.sent.push(JSON.parse(data)); }
  close(code, reason) { this.closedWith = { code, reason }; this.readyState = 2; }
  open() { this.readyState = 1; this.onopen?.({}); }
  recv(msg) { this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) }); }
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
}

// Timers run only when the test says so, in due order.
function fakeTimers() {
  let now = 0, next = 1;
  const pending = new Map();
  return {
    pending,
    setTimeout: (fn, ms) => { pending.set(next, { fn, at: now + ms, ms }); return next++; },
    clearTimeout: (id) => { pending.delete(id); },
    // Runs the earliest timer; returns its delay.
    runNext() {
      const [id, t] = [...pending].sort((a, b) => a[1].at - b[1].at)[0];
      pending.delete(id);
      now = t.at;
      t.fn();
      return t.ms;
    },
  };
}

function setup(opts = {}) {
  FakeSocket.made = [];
  const timers = fakeTimers();
  const events = [];
  const client = new WsmClient({ base: 'ws://h:1', sessionId: 'job-1' }, {
    WebSocket: FakeSocket, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout,
    onState: (s, d) => events.push(['state', s, d]),
    onProgress: (m) => events.push(['progress', m.seq]),
    onReset: (m) => events.push(['reset', m.seq, m.epoch]),
    onComplete: (m) => events.push(['complete', m.seq]),
    onError: (m) => events.push(['error', m.seq]),
    ...opts,
  });
  const last = () => FakeSocket.made.at(-1);
  return { client, timers, events, last };
}

const msg = (seq, epoch, type = 'progress', extra = {}) =>
  ({ seq, epoch, type, sessionId: 'job-1', timestamp: 1, progress: seq, ...extra });

test('backoffDelay: full jitter below min(cap, base * 2^attempt)', () => {
  const justBelow = () => 1 - Number.EPSILON;
  for (let a = 0; a < 70; a++) {
    const bound = Math.min(10000, 500 * 2 ** a);
    assert.equal(backoffDelay(a, 500, 10000, () => 0), 0);
    assert.equal(backoffDelay(a, 500, 10000, justBelow), Math.floor(justBelow() * bound));
    assert.ok(backoffDelay(a, 500, 10000, justBelow) < bound);
    assert.equal(backoffDelay(a, 500, 10000, () => 0.5), Math.floor(bound / 2));
  }
});

test('retryHint reads the reason of lifetime and drain closes', () => {
  assert.equal(retryHint('lifetime; retry_ms=4210'), 4210);
  assert.equal(retryHint('shutdown; retry_ms=0'), 0);
  assert.equal(retryHint('lifetime'), null);
  assert.equal(retryHint('retry_ms=12x'), null);
  assert.equal(retryHint(undefined), null);
});

test('reconnects with the drawn delays, each within its bound; a message resets the count', () => {
  const draws = [0.99, 0.5, 0.25, 0.999, 0.75, 0.1];
  const { client, timers, last } = setup({
    backoff: { baseMs: 100, capMs: 700 }, random: () => draws.shift(),
  });
  assert.equal(client.state, WsmState.CONNECTING);
  // 0.99 * 100, 0.5 * 200, 0.25 * 400, then the cap of 700: 0.999 and 0.75 of it.
  for (const want of [99, 100, 100, 699, 525]) {
    last().drop(1006);
    assert.equal(client.state, WsmState.WAITING_RETRY);
    assert.equal(timers.runNext(), want);
    assert.equal(client.state, WsmState.CONNECTING);
  }
  assert.equal(FakeSocket.made.length, 6);
  last().open();
  last().recv(msg(1, 7));
  assert.equal(client.attempt, 0);
  last().drop(1006);
  assert.equal(timers.runNext(), 10); // attempt 0 again: 0.1 * 100, not 0.1 * 700
  client.close();
});

test('a first-try bound of baseMs, then the backoff after a stable connection is reset', () => {
  const { client, timers, last } = setup({ random: () => 0.999999, stableMs: 50 });
  last().drop(1006);
  assert.equal(timers.runNext(), 499);
  last().drop(1006);
  assert.equal(timers.runNext(), 999);
  last().open();
  assert.equal(client.attempt, 2);
  assert.equal(timers.runNext(), 50); // the stable timer
  assert.equal(client.attempt, 0);
  client.close();
});

test('4001 and 1001 wait exactly the hint, and resume with lastSeq and epoch', () => {
  const { client, timers, events, last } = setup({ random: () => { throw new Error('no draw'); } });
  assert.equal(last().url, 'ws://h:1/api/images_mvp/progress/job-1');
  last().open();
  last().recv(msg(1, 42));
  last().recv(msg(2, 42));
  last().drop(4001, 'lifetime; retry_ms=1234');
  const wait = events.at(-1)[2];
  assert.equal(wait.delayMs, 1234);
  assert.equal(wait.hinted, true);
  assert.equal(timers.runNext(), 1234);
  assert.equal(last().url, 'ws://h:1/api/images_mvp/progress/job-1?lastSeq=2&epoch=42');
  last().open();
  last().drop(1001, 'shutdown; retry_ms=17');
  assert.equal(timers.runNext(), 17);
  assert.equal(client.attempt, 0);
  client.close();
});

test('a 4001 without a hint falls back to the backoff', () => {
  const { client, timers, last } = setup({ random: () => 0.5 });
  last().open();
  last().drop(4001, 'lifetime');
  assert.equal(timers.runNext(), 250);
  client.close();
});

test('duplicates and old seqs of the same epoch are dropped; another epoch is taken', () => {
  const { client, events, last } = setup();
  last().open();
  for (const s of [1, 2, 2, 1, 3]) last().recv(msg(s, 5));
  last().recv('not json');
  last().recv({ type: 'progress' }); // no seq: not a session message
  assert.deepEqual(events.filter((e) => e[0] === 'progress').map((e) => e[1]), [1, 2, 3]);
  assert.equal(client.lastSeq, 3);
  client.close();
});

test('reset: onReset, the new epoch, and the replay whose seq is at most the reset seq', () => {
  const { client, events, last } = setup({ lastSeq: 9, epoch: 111 });
  assert.match(last().url, /\?lastSeq=9&epoch=111$/);
  last().open();
  last().recv(msg(4, 222, 'reset'));
  assert.equal(client.epoch, 222);
  last().recv(msg(3, 222));
  last().recv(msg(4, 222, 'complete', { metadata: {} }));
  assert.deepEqual(events.filter((e) => e[0] !== 'state'),
    [['reset', 4, 222], ['progress', 3], ['complete', 4]]);
  assert.equal(client.state, WsmState.CLOSED);
  assert.equal(events.at(-1)[2].why, 'complete');
  assert.deepEqual(last().closedWith, { code: 1000, reason: 'job complete' });
});

test('the JSON ping is echoed with its nonce', () => {
  const { client, last } = setup();
  last().open();
  last().recv({ type: 'ping', nonce: '00112233aabbccdd', timestamp: 5 });
  assert.deepEqual(last().sent, [{ type: 'pong', nonce: '00112233aabbccdd' }]);
  assert.equal(client.lastSeq, null);
  client.close();
});

test('4003, 4002, 4005 and protocol closes stop it; error messages too; connect() starts again', () => {
  for (const [code, why] of [[4003, 'session-closed'], [4002, 'evicted'], [4005, 'refused'], [1009, 'protocol']]) {
    const { client, timers, events, last } = setup();
    last().open();
    last().drop(code, 'x');
    assert.equal(client.state, WsmState.CLOSED);
    assert.equal(events.at(-1)[2].why, why);
    assert.equal(timers.pending.size, 0, `a timer after ${code}`);
    client.connect();
    assert.equal(FakeSocket.made.length, 2);
    client.close();
  }
  const { client, timers, events, last } = setup();
  last().open();
  last().recv(msg(1, 3, 'error', { error: 'disk full' }));
  assert.equal(client.state, WsmState.CLOSED);
  assert.deepEqual(events.filter((e) => e[0] === 'error'), [['error', 1]]);
  assert.equal(timers.pending.size, 0);
});

test('close() stops for good, once, and later events of the socket are ignored', () => {
  const { client, timers, events, last } = setup();
  const ws = last();
  ws.open();
  client.close(4100, 'bye');
  client.close();
  assert.deepEqual(ws.closedWith, { code: 4100, reason: 'bye' });
  assert.equal(events.filter((e) => e[1] === 'closed').length, 1);
  ws.onclose?.({ code: 1006, reason: '' }); // handlers were detached
  assert.equal(timers.pending.size, 0);
  assert.equal(FakeSocket.made.length, 1);
});

test('events: EventTarget listeners get the same as the callbacks', () => {
  FakeSocket.made = [];
  const client = new WsmClient('http://h:2/p/x?keep=1', { WebSocket: FakeSocket, autoConnect: false });
  const got = [];
  for (const t of ['state', 'message', 'progress', 'reset', 'complete'])
    client.addEventListener(t, (e) => got.push([t, e.detail.state ?? e.detail.seq]));
  assert.equal(client.state, WsmState.CLOSED);
  client.connect();
  assert.equal(FakeSocket.made[0].url, 'ws://h:2/p/x?keep=1');
  FakeSocket.made[0].open();
  FakeSocket.made[0].recv(msg(1, 1));
  assert.deepEqual(got, [['state', 'connecting'], ['state', 'open'], ['message', 1], ['progress', 1]]);
  client.close();
});

test('bad arguments are refused at once', () => {
  assert.throws(() => new WsmClient({}, { WebSocket: FakeSocket }), TypeError);
  assert.throws(() => new WsmClient({ sessionId: 'a' }, { WebSocket: FakeSocket }), TypeError); // no location
  assert.throws(() => new WsmClient('ws://h/x', { WebSocket: FakeSocket, lastSeq: 3 }), RangeError);
  assert.throws(() => new WsmClient('ws://h/x', { WebSocket: FakeSocket, backoff: { baseMs: 0 } }), RangeError);
});
