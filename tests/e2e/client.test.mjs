// clients/browser/wsm-client.js in a real headless Chromium against the real
// example server, which serves the module at /wsm-client.js: a job followed
// to its end and a failing one (no reconnect after either), a manual
// cleanup (4003: none either), a lifetime close (4001: its hint waited
// exactly, then a resume in the same epoch), a drain (1001: its hint) and a
// restart with --state-dir (a resume with lastSeq/epoch, a reset, the rest
// of the job), a network drop (kill -9, the full-jitter backoff within its
// bounds until the server is back on its port), resets for a foreign epoch
// and a lastSeq the session never sent, and the JSON ping.
//
// The page is any page of the server's origin; the module is imported from
// the server into it and each client is recorded: what it reports, the
// WebSockets it opens, the pongs it sends and the timers it holds (through
// the injection options), each with its time. The tests wait for recorded
// events, each wait bounded.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

import { SERVER, request, skip, startServer, stopServer, tempDir, waitFor } from './lib.mjs';
import { useChromium } from './pinned.mjs';

const TOKEN = 'client-token-7';
// Drain hints of at most 1 s (no lifetime jitter), so reconnects are quick.
const FAST = ['--drain-ms', '300', '--lifetime-jitter-percent', '0'];
const JOBS = '/api/images_mvp/jobs';

if (!SERVER || !existsSync(SERVER)) skip(`no server binary (PROGRESS_BROADCAST=${SERVER})`);
let browser;
useChromium((b) => { browser = b; });

// A page of the server's origin (a 404 is enough) with the module imported
// and window.track(name, target, options) to start a recorded client.
async function openHarness(server) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.errors = errors;
  await page.goto(`http://127.0.0.1:${server.port}/client-harness`);
  await page.evaluate(async () => {
    const wsm = await import('/wsm-client.js');
    window.runs = {};
    window.track = (name, target, options = {}) => {
      const run = { log: [], sockets: [], timers: new Set(), pongs: 0 };
      const note = (kind, fields) => run.log.push({ t: performance.now(), kind, ...fields });
      class RecordedSocket extends WebSocket {
        constructor(url) {
          super(url);
          run.sockets.push(url);
        }
        send(data) {
          if (JSON.parse(data).type === 'pong') run.pongs++;
          super.send(data);
        }
      }
      const onMessage = (kind) => (msg) => note(kind, msg);
      // A backoff draw where only hints should be used is a page error.
      const { forbidBackoff, ...rest } = options;
      if (forbidBackoff) rest.random = () => { throw new Error('a backoff draw'); };
      run.client = new wsm.WsmClient(target, {
        WebSocket: RecordedSocket,
        setTimeout: (fn, ms) => {
          const id = setTimeout(() => { run.timers.delete(id); fn(); }, ms);
          run.timers.add(id);
          return id;
        },
        clearTimeout: (id) => { run.timers.delete(id); clearTimeout(id); },
        onState: (state, detail) => note('state', detail),
        onProgress: onMessage('progress'),
        onError: onMessage('error'),
        onComplete: onMessage('complete'),
        onReset: onMessage('reset'),
        ...rest,
      });
      window.runs[name] = run;
    };
    window.summary = (name) => {
      const r = window.runs[name];
      return {
        log: r.log.map((e) => ({ ...e, error: undefined })), sockets: r.sockets,
        timers: r.timers.size, pongs: r.pongs, state: r.client.state,
        lastSeq: r.client.lastSeq, epoch: r.client.epoch,
      };
    };
  });
  return page;
}

// The first log entry from index `from` on of kind `kind` whose fields
// equal those of match, with its index `i`; waits for it at most ms.
async function entry(page, name, kind, match = {}, from = 0, ms = 20000) {
  const h = await page.waitForFunction(([n, k, m, f]) => {
    const log = window.runs[n].log;
    for (let i = f; i < log.length; i++) {
      const e = log[i];
      if (e.kind === k && Object.entries(m).every(([key, v]) => e[key] === v)) return { i, ...e };
    }
    return null;
  }, [name, kind, match, from], { timeout: ms, polling: 20 });
  return h.jsonValue();
}

const summary = (page, name) => page.evaluate((n) => window.summary(n), name);
const track = (page, name, target, options) =>
  page.evaluate(([n, t, o]) => window.track(n, t, o), [name, target, options]);

async function startJob(server, fail = false) {
  const res = await request(server, 'POST', JOBS, { body: JSON.stringify({ fail }) });
  assert.equal(res.status, 200, res.body);
  return res.json().sessionId;
}

async function metric(server, name) {
  const body = (await request(server, 'GET', '/metrics')).body;
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(body);
  assert.ok(m, `no ${name} in /metrics`);
  return Number(m[1]);
}

// The messages the app was given, in order: each taken once, seq rising
// within an epoch.
function assertNoRepeats(log) {
  const seen = new Map();
  for (const e of log.filter((x) => ['progress', 'error', 'complete'].includes(x.kind))) {
    const prev = seen.get(e.epoch) ?? 0;
    assert.ok(e.seq > prev, `seq ${e.seq} after ${prev} in epoch ${e.epoch}`);
    seen.set(e.epoch, e.seq);
  }
}

// Closed for good: the state, no timer held, and (if given) the number of
// WebSockets it made.
async function assertStopped(page, name, why, sockets) {
  const s = await summary(page, name);
  assert.equal(s.state, 'closed');
  assert.equal(s.log.at(-1).why, why);
  assert.equal(s.timers, 0, 'a timer is still pending: a reconnect could follow');
  if (sockets !== undefined) assert.equal(s.sockets.length, sockets);
  return s;
}

// ---- scenarios -----------------------------------------------------------

test('a job to its end, then a failing one: each once, no reconnect after complete or error', async () => {
  const s = await startServer(['--port', '0', ...FAST]);
  const served = await request(s, 'GET', '/wsm-client.js');
  assert.match(served.headers['content-type'], /^text\/javascript/);
  assert.equal(served.body, readFileSync(new URL('../../clients/browser/wsm-client.js', import.meta.url), 'utf8'));
  const page = await openHarness(s);
  const id = await startJob(s);
  // A target of the session id alone: the page's origin and the default prefix.
  await track(page, 'ok', { sessionId: id });
  await entry(page, 'ok', 'state', { state: 'open' });
  const done = await entry(page, 'ok', 'complete');
  assert.equal(typeof done.metadata.width, 'number');
  await entry(page, 'ok', 'state', { state: 'closed', why: 'complete' });
  const ok = await assertStopped(page, 'ok', 'complete', 1);
  assert.ok(ok.log.filter((e) => e.kind === 'progress').length > 5);
  assertNoRepeats(ok.log);
  assert.equal(ok.lastSeq, done.seq);
  // The client closed it (1000): the server counts a peer close.
  await waitFor('the close to reach the server', async () =>
    (await metric(s, 'wsm_connections_closed_total{cause="peer"}')) === 1, 5000);

  const bad = await startJob(s, true);
  await track(page, 'bad', { sessionId: bad });
  const failed = await entry(page, 'bad', 'error');
  assert.match(failed.error, /simulated decoder error/);
  await entry(page, 'bad', 'state', { state: 'closed', why: 'error' });
  await assertStopped(page, 'bad', 'error', 1);
  assert.equal(await metric(s, 'wsm_connections_opened_total'), 2);
  assert.deepEqual(page.errors, []);
  await page.context().close();
  assert.equal((await stopServer(s)).code, 0);
});

test('manual cleanup: 4003 closes the client for good', async () => {
  const s = await startServer(['--port', '0', '--admin-token', TOKEN, ...FAST]);
  const page = await openHarness(s);
  const id = await startJob(s);
  await track(page, 'c', { sessionId: id });
  await entry(page, 'c', 'progress');
  const res = await request(s, 'POST', `/api/images_mvp/websocket/cleanup/${id}`,
    { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.deepEqual(res.json(), { closed: 1 });
  const closed = await entry(page, 'c', 'state', { state: 'closed' });
  assert.equal(closed.why, 'session-closed');
  assert.equal(closed.code, 4003);
  await assertStopped(page, 'c', 'session-closed', 1);
  assert.equal(await metric(s, 'wsm_connections_opened_total'), 1);
  await page.context().close();
  assert.equal((await stopServer(s)).code, 0);
});

test('lifetime close 4001: its retry_ms waited exactly, then a resume in the same epoch', async () => {
  // Lifetimes of 800 to 1000 ms over a job of about 4 s, hints up to
  // 1000 ms: at least two lifetime closes.
  const s = await startServer(['--port', '0', '--max-lifetime-ms', '1000',
    '--lifetime-jitter-percent', '20']);
  const page = await openHarness(s);
  const id = await startJob(s);
  await track(page, 'l', { sessionId: id }, { forbidBackoff: true });
  await entry(page, 'l', 'complete', {}, 0, 30000);
  const { log } = await assertStopped(page, 'l', 'complete');
  const waits = log.filter((e) => e.kind === 'state' && e.state === 'waiting-retry');
  assert.ok(waits.length >= 2, 'not two lifetime closes during the job');
  for (const w of waits) {
    assert.equal(w.code, 4001);
    assert.equal(w.hinted, true);
    assert.equal(w.delayMs, Number(/^lifetime; retry_ms=(\d+)$/.exec(w.reason)[1]));
    assert.ok(w.delayMs <= 1000);
    // The next connection: not before the hint, and resuming from the
    // last message taken before the close.
    const i = log.indexOf(w);
    const next = log.slice(i).find((e) => e.kind === 'state' && e.state === 'connecting');
    assert.ok(next.t - w.t >= w.delayMs - 1, `reconnected after ${next.t - w.t} ms, hint ${w.delayMs}`);
    assert.ok(next.t - w.t < w.delayMs + 1000, `reconnected only after ${next.t - w.t} ms`);
    const before = log.slice(0, i).filter((e) => ['progress', 'complete'].includes(e.kind)).at(-1);
    // (The first close may come before the job's first message: a fresh start.)
    if (before) assert.match(next.url, new RegExp(`\\?lastSeq=${before.seq}&epoch=${before.epoch}$`));
    else assert.doesNotMatch(next.url, /\?/);
  }
  assert.equal(log.filter((e) => e.kind === 'reset').length, 0);
  assert.equal(new Set(log.filter((e) => e.epoch).map((e) => e.epoch)).size, 1);
  assertNoRepeats(log);
  assert.equal(await metric(s, 'wsm_connections_closed_total{cause="lifetime"}'), waits.length);
  assert.deepEqual(page.errors, []);
  await page.context().close();
  assert.equal((await stopServer(s)).code, 0);
});

test('drain with 1001: its hint, then the server restarted with --state-dir; the client resumes and gets the rest', async () => {
  const dir = tempDir('client-state');
  const first = await startServer(['--port', '0', '--state-dir', dir, ...FAST]);
  const page = await openHarness(first);
  const id = await startJob(first);
  await track(page, 'r', { sessionId: id });
  await entry(page, 'r', 'progress');
  const seen = await summary(page, 'r');
  // SIGTERM drains: 1001 with "shutdown; retry_ms=N".
  assert.equal((await stopServer(first)).code, 0);
  const w = await entry(page, 'r', 'state', { state: 'waiting-retry', code: 1001 });
  assert.equal(w.hinted, true);
  assert.equal(w.delayMs, Number(/^shutdown; retry_ms=(\d+)$/.exec(w.reason)[1]));
  assert.ok(w.delayMs <= 1000);
  const second = await startServer(['--port', String(first.port), '--state-dir', dir, ...FAST]);
  assert.match(second.output(), /resumed 1 unfinished job/);
  const reset = await entry(page, 'r', 'reset', {}, w.i);
  const done = await entry(page, 'r', 'complete', {}, w.i);
  const { log } = await assertStopped(page, 'r', 'complete');
  // The first try after the drain: not before the hint, with what it had.
  const next = await entry(page, 'r', 'state', { state: 'connecting' }, w.i);
  assert.ok(next.t - w.t >= w.delayMs - 1, `reconnected after ${next.t - w.t} ms, hint ${w.delayMs}`);
  const last = seen.log.filter((e) => e.kind === 'progress').at(-1);
  const lastBefore = log.slice(0, w.i).filter((e) => e.kind === 'progress').at(-1);
  assert.ok(lastBefore.seq >= last.seq);
  assert.match(next.url, new RegExp(`\\?lastSeq=${lastBefore.seq}&epoch=${lastBefore.epoch}$`));
  // A new life of the session: a reset to its epoch, then the rest of the job.
  assert.notEqual(reset.epoch, lastBefore.epoch);
  assert.equal(done.epoch, reset.epoch);
  assert.ok(done.i > reset.i);
  const after = log.slice(reset.i).filter((e) => e.kind === 'progress');
  assert.ok(after.length > 0 && after.every((e) => e.epoch === reset.epoch));
  assertNoRepeats(log);
  assert.deepEqual(done.metadata, (await request(second, 'GET', `${JOBS}/${id}`)).json().metadata);
  await page.context().close();
  assert.equal((await stopServer(second)).code, 0);
});

test('network drop: the server killed, the client backs off within its bounds until it is back', async () => {
  const dir = tempDir('client-drop');
  const first = await startServer(['--port', '0', '--state-dir', dir, ...FAST]);
  const page = await openHarness(first);
  const id = await startJob(first);
  await track(page, 'd', { sessionId: id }, { backoff: { baseMs: 40, capMs: 300 } });
  await entry(page, 'd', 'progress');
  // No close frame: 1006, then refused connections while the port is dead.
  assert.equal((await stopServer(first, 'SIGKILL')).signal, 'SIGKILL');
  const drop = await entry(page, 'd', 'state', { state: 'waiting-retry', code: 1006 });
  await entry(page, 'd', 'state', { state: 'waiting-retry', attempt: 3 }, drop.i);
  const second = await startServer(['--port', String(first.port), '--state-dir', dir, ...FAST]);
  await entry(page, 'd', 'complete', {}, drop.i, 30000);
  const { log } = await assertStopped(page, 'd', 'complete');
  const waits = log.filter((e) => e.kind === 'state' && e.state === 'waiting-retry');
  assert.ok(waits.length >= 4);
  waits.forEach((w, n) => {
    assert.equal(w.hinted, false);
    assert.equal(w.attempt, n, 'the attempts count up from 0');
    const bound = Math.min(300, 40 * 2 ** n);
    assert.ok(w.delayMs >= 0 && w.delayMs < bound, `delay ${w.delayMs} for attempt ${n}, bound ${bound}`);
    const next = log.slice(log.indexOf(w)).find((e) => e.kind === 'state' && e.state === 'connecting');
    assert.ok(next.t - w.t >= w.delayMs - 1);
  });
  // Back on the new server: a reset (a new life of the session), the end.
  const reset = log.find((e) => e.kind === 'reset');
  assert.ok(reset, 'no reset from the restarted server');
  assertNoRepeats(log);
  await page.context().close();
  assert.equal((await stopServer(second)).code, 0);
});

test('epoch reset: a foreign epoch, or a lastSeq the session never sent, resets; a known one resumes', async () => {
  const s = await startServer(['--port', '0', ...FAST]);
  const page = await openHarness(s);
  const id = await startJob(s);
  await waitFor('the job to finish', async () =>
    (await request(s, 'GET', `${JOBS}/${id}`)).json().state === 'complete', 20000);
  // Another life of the session (a restarted server, say): reset first,
  // then the retained last progress and the complete.
  await track(page, 'f', { sessionId: id }, { lastSeq: 3, epoch: 1 });
  const done = await entry(page, 'f', 'complete');
  const f = await assertStopped(page, 'f', 'complete', 1);
  const kinds = f.log.filter((e) => e.kind !== 'state').map((e) => e.kind);
  assert.deepEqual(kinds, ['reset', 'progress', 'complete']);
  const reset = f.log.find((e) => e.kind === 'reset');
  assert.notEqual(reset.epoch, 1);
  assert.equal(reset.seq, done.seq);
  assert.equal(f.epoch, reset.epoch);
  assert.equal(f.lastSeq, done.seq);
  assert.match(f.sockets[0], /\?lastSeq=3&epoch=1$/);

  // The right epoch, but a lastSeq beyond the session's: a reset too.
  await track(page, 'ahead', { sessionId: id }, { lastSeq: done.seq + 100, epoch: reset.epoch });
  await entry(page, 'ahead', 'complete');
  const ahead = await summary(page, 'ahead');
  assert.deepEqual(ahead.log.filter((e) => e.kind !== 'state').map((e) => e.kind),
    ['reset', 'progress', 'complete']);

  // Known up to just before the complete: only the complete, no reset.
  await track(page, 'known', { sessionId: id }, { lastSeq: done.seq - 1, epoch: reset.epoch });
  await entry(page, 'known', 'complete');
  const known = await summary(page, 'known');
  assert.deepEqual(known.log.filter((e) => e.kind !== 'state').map((e) => e.kind), ['complete']);
  assert.equal(await metric(s, 'wsm_resets_total'), 2);
  await page.context().close();
  assert.equal((await stopServer(s)).code, 0);
});

test('--app-ping 1: the client echoes each JSON ping, and the server keeps it open', async () => {
  // Without the echoes the connection would be stale after 300 ms.
  const s = await startServer(['--port', '0', '--app-ping', '1', '--ping-interval-ms', '100',
    '--stale-timeout-ms', '300', ...FAST]);
  const page = await openHarness(s);
  await track(page, 'p', { sessionId: 'quiet-session' });
  await entry(page, 'p', 'state', { state: 'open' });
  await page.waitForFunction(() => window.runs.p.pongs >= 8, null, { timeout: 10000, polling: 20 });
  const p = await summary(page, 'p');
  assert.equal(p.state, 'open');
  assert.equal(p.sockets.length, 1);
  assert.equal(p.log.filter((e) => e.state === 'waiting-retry').length, 0);
  assert.equal(p.lastSeq, null, 'pings are not session messages');
  assert.equal(await metric(s, 'wsm_connections_closed_total{cause="stale"}'), 0);
  await page.evaluate(() => window.runs.p.client.close());
  await assertStopped(page, 'p', 'closed', 1);
  await page.context().close();
  assert.equal((await stopServer(s)).code, 0);
});
