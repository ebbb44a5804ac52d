// The example's page in a real headless Chromium (Debian's /usr/bin/chromium),
// driven over the DevTools protocol with playwright-core: a job followed to
// its end, a failing job, a late joiner, a server stopped mid-job and
// restarted on the same port (with and without job records), the page over
// https and wss, the monitor and its cleanup button, and three servers as a
// cluster through a redis-server of the test's own (a job on one node, its
// page on another, that node killed and the page opened on a third).
// Screenshots of the finished page go to the build directory.
//
// Chromium and playwright-core come from pinned.mjs.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  OUT_DIR, SERVER, makeCertificate, request, skip, sleep, startRedis,
  startSentinelRedis, startServer, stopServer, tempDir, waitFor,
} from './lib.mjs';
import { useChromium } from './pinned.mjs';

const TOKEN = 'page-token-42';
// Drain hints of at most 1 s (no lifetime jitter), so reconnects are quick.
const FAST = ['--drain-ms', '300', '--lifetime-jitter-percent', '0'];

// ---- tools -------------------------------------------------------------

if (!SERVER || !existsSync(SERVER)) skip(`no server binary (PROGRESS_BROADCAST=${SERVER})`);
let browser;
useChromium((b) => {
  browser = b;
  console.log(`Chromium ${browser.version()}`);
});

async function openPage(server, { path = '/', ignoreHTTPSErrors = false } = {}) {
  const context = await browser.newContext({
    viewport: { width: 960, height: 1400 }, ignoreHTTPSErrors,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.errors = errors;
  await page.goto(`${server.scheme}://127.0.0.1:${server.port}${path}`);
  return page;
}

const text = (page, sel) => page.locator(sel).textContent();
const pct = async (page) => Number(await page.locator('#bar').getAttribute('aria-valuenow'));
const epochOf = async (page) => Number(/of epoch (\d+)/.exec(await text(page, '#seq'))?.[1]);

async function expectComplete(page) {
  await page.locator('#result.ok').waitFor({ state: 'visible' });
  assert.equal(await pct(page), 100);
  assert.equal(await text(page, '#stage'), 'complete');
  assert.match(await text(page, '#result strong'), /^Done: \d+×\d+, WEBP, [\d.]+ kB$/);
  assert.match(await text(page, '#conn'), /closed \(job finished\)/);
}

// The test's own page errors: the failed connections of a reconnect are
// expected, anything else is not.
function assertNoScriptErrors(page) {
  const real = page.errors.filter((e) => !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e));
  assert.deepEqual(real, []);
}

async function shot(page, name) {
  const file = join(OUT_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

// ---- scenarios -----------------------------------------------------------

test('start a job: it reaches 100% and shows complete; a late joiner sees the same', async () => {
  const s = await startServer(['--port', '0', ...FAST]);
  const page = await openPage(s);
  await waitFor('the monitor to fill in', async () => /^\d+$/.test(await text(page, '#m-total')));
  await page.click('#start');
  await page.locator('#conn.live').waitFor();
  const id = await text(page, '#session');
  assert.match(id, /^[0-9a-f]{16}$/);
  await waitFor('progress to show', async () => (await pct(page)) > 0);
  assert.match(await text(page, '#stage'), /^(upload|analyse|resize|encode)$/);
  assert.ok((await text(page, '#message')).length > 5);
  await expectComplete(page);
  const metadata = JSON.parse(await text(page, '#result pre'));
  assert.deepEqual(Object.keys(metadata), ['width', 'height', 'format', 'bytes']);
  const api = (await request(s, 'GET', `/api/images_mvp/jobs/${id}`)).json();
  assert.deepEqual(metadata, api.metadata);
  assert.match(page.url(), new RegExp(`#job=${id}$`));

  // The monitor: figures, a memory chart with points, the configuration,
  // and the job in the session list with its cleanup button.
  await waitFor('memory samples', async () =>
    (await page.locator('#mem-line').getAttribute('points')).split(' ').length >= 3, 10000);
  assert.match(await text(page, '#m-held'), /\d+(\.\d+)? (B|kB|MB)/);
  assert.match(await text(page, '#config'), /ping every30 s/);
  assert.match(await text(page, '#config'), /sessions admittedany id/);
  assert.match(await text(page, '#m-refused'), /^\d+$/);
  // Set up with wsm_setup_info(): the monitor shows no setup problem.
  assert.doesNotMatch(await text(page, '#monitor-state'), /setup problem/);
  const row = page.locator(`#sessions tr[data-session="${id}"]`);
  await waitFor('the finished job in the list', async () =>
    /complete/.test(await row.textContent()), 10000);
  assert.equal(await row.locator('button.cleanup').count(), 1);
  await shot(page, 'e2e-finished.png');

  // A late joiner: the same link in a new page gets the retained last
  // progress and the complete by replay.
  const late = await openPage(s, { path: `/#job=${id}` });
  await expectComplete(late);
  assert.match(await text(late, '#seq'), /^2 received/);
  assert.deepEqual(JSON.parse(await text(late, '#result pre')), metadata);
  assertNoScriptErrors(page);
  assertNoScriptErrors(late);
  await page.context().close();
  await late.context().close();
  assert.equal((await stopServer(s)).code, 0);
});

test('a failing job shows its error', async () => {
  const s = await startServer(['--port', '0', ...FAST]);
  const page = await openPage(s);
  await page.click('#start-fail');
  await page.locator('#result.failed').waitFor({ state: 'visible' });
  assert.match(await text(page, '#result'), /^Error: resize failed: simulated decoder error/);
  assert.equal(await text(page, '#stage'), 'failed');
  assert.ok((await pct(page)) >= 40 && (await pct(page)) < 80);
  assert.match(await page.locator('#bar').getAttribute('class'), /failed/);
  assertNoScriptErrors(page);
  await page.context().close();
  assert.equal((await stopServer(s)).code, 0);
});

// Stops the server mid-job with SIGTERM and checks the page goes into its
// reconnect loop; returns the port and the epoch the page had seen.
async function stopMidJob(server, page) {
  await page.click('#start');
  await waitFor('the job to be well under way', async () => (await pct(page)) >= 30, 15000);
  const seen = { pct: await pct(page), epoch: await epochOf(page), id: await text(page, '#session') };
  assert.ok(seen.pct < 100);
  const stopped = await stopServer(server);
  assert.equal(stopped.code, 0, server.output());
  assert.ok(stopped.ms < 3000, `shutdown took ${stopped.ms} ms`);
  // Text and button read at once, in the page: the drain's retry_ms hint
  // may be short enough to end the countdown between two separate reads.
  await waitFor('the page to count down to a reconnect, its button shown', () =>
    page.evaluate(() =>
      /^reconnecting in \d+ s/.test(document.querySelector('#conn').textContent) &&
      !document.querySelector('#reconnect').hidden), 10000, 20);
  return seen;
}

test('a cluster of three nodes: a job on A followed on B, B killed, the page reloaded on C resumes', async () => {
  const redis = await startRedis();
  const node = (id) => startServer(['--port', '0', '--redis', redis.url,
    '--node-id', id, ...FAST]);
  const [a, b, c] = [await node('a'), await node('b'), await node('c')];
  // The job runs on A; the page follows it on B, through Redis.
  const { sessionId: id } = (await request(a, 'POST', '/api/images_mvp/jobs')).json();
  const onB = await openPage(b, { path: `/#job=${id}` });
  await onB.locator('#conn.live').waitFor();
  await waitFor('progress to reach B', async () => (await pct(onB)) > 0, 15000);
  // The monitor says which node it is and that Redis is reachable.
  await waitFor('the cluster figure', async () =>
    /^Redis up$/.test(await text(onB, '#m-cluster')), 10000);
  assert.equal(await text(onB, '#m-node'), 'node b');
  const seenOnB = await pct(onB);
  // B dies: no drain, no close frame.
  await stopServer(b, 'SIGKILL');
  await onB.context().close();
  // The same link, opened against C: the state is in Redis, not in B.
  const onC = await openPage(c, { path: `/#job=${id}` });
  await waitFor('C to show at least what B showed', async () =>
    (await pct(onC)) >= seenOnB, 15000);
  await expectComplete(onC);
  assert.equal(await text(onC, '#m-node'), 'node c');
  const api = (await request(a, 'GET', `/api/images_mvp/jobs/${id}`)).json();
  assert.equal(api.state, 'complete');
  assert.deepEqual(JSON.parse(await text(onC, '#result pre')), api.metadata);
  await shot(onC, 'e2e-cluster-resumed-on-c.png');
  assertNoScriptErrors(onC);
  await onC.context().close();
  assert.equal((await stopServer(a)).code, 0);
  assert.equal((await stopServer(c)).code, 0);
  redis.proc.kill('SIGTERM');
});

// The "done when": Redis as production runs it (a primary, a
// replica and three Sentinels, AUTH and TLS everywhere), its primary killed
// mid-job; every page ends with the job's result.
test('Sentinel, AUTH and TLS: three nodes, the primary killed mid-job, every page ends with the result', async () => {
  const certs = makeCertificate(tempDir('redis-tls'));
  if (!certs) skip('openssl is not installed');
  const redis = await startSentinelRedis({ password: 'data-pw', sentinelPassword: 'sentinel-pw', cert: certs });
  // Passwords from the environment: never on a command line.
  const env = { WSM_REDIS_PASSWORD: 'data-pw', WSM_REDIS_SENTINEL_PASSWORD: 'sentinel-pw' };
  const node = (id) => startServer(['--port', '0', '--redis', redis.url,
    '--redis-tls-ca', certs.cert, '--node-id', id, '--cluster-timeout-ms', '1000',
    '--cluster-retry-max-ms', '500', ...FAST], { env });
  const nodes = [await node('a'), await node('b'), await node('c')];
  for (const n of nodes) assert.doesNotMatch(n.output(), /data-pw|sentinel-pw/);
  const { sessionId: id } = (await request(nodes[0], 'POST', '/api/images_mvp/jobs')).json();
  // The job lasts a few seconds: the pages open at once.
  const pages = await Promise.all(nodes.map((n) => openPage(n, { path: `/#job=${id}` })));
  await waitFor('progress on every page', async () =>
    (await Promise.all(pages.map(pct))).every((x) => x > 0), 15000, 20);
  const api = async () => (await request(nodes[0], 'GET', `/api/images_mvp/jobs/${id}`)).json();
  assert.equal((await api()).state, 'running');
  // Its terminal comes while the Sentinels fail over: it waits in A's
  // outbox, then goes to the new primary.
  await redis.killPrimary();
  for (const p of pages) {
    await expectComplete(p);
    assert.deepEqual(JSON.parse(await text(p, '#result pre')), (await api()).metadata);
  }
  await shot(pages[1], 'e2e-sentinel-failover.png');
  for (const p of pages) {
    assertNoScriptErrors(p);
    await p.context().close();
  }
  for (const n of nodes) {
    assert.doesNotMatch(n.output(), /data-pw|sentinel-pw/);
    assert.equal((await stopServer(n)).code, 0);
  }
});

test('server restarted mid-job with --state-dir: the page reconnects, resets and shows the true end', async () => {
  const dir = tempDir('state');
  const first = await startServer(['--port', '0', '--state-dir', dir, ...FAST]);
  const page = await openPage(first);
  const seen = await stopMidJob(first, page);
  // The job stays where it was while the server is away.
  await sleep(1200);
  assert.match(await text(page, '#conn'), /^(reconnecting in \d+ s|connecting)/);
  const second = await startServer(['--port', String(first.port), '--state-dir', dir, ...FAST]);
  assert.match(second.output(), /resumed 1 unfinished job/);
  await expectComplete(page);
  // It went through the new server's life of the session: reset, replay.
  assert.notEqual(await epochOf(page), seen.epoch);
  assert.match(await text(page, '#note'), /new life of this session/);
  assert.match(await text(page, '#seq'), /received since the reset/);
  assert.equal(await text(page, '#session'), seen.id);
  const job = (await request(second, 'GET', `/api/images_mvp/jobs/${seen.id}`)).json();
  assert.equal(job.state, 'complete');
  assert.equal(job.resumed, true);
  const metrics = (await request(second, 'GET', '/metrics')).body;
  assert.match(metrics, /^wsm_resets_total [1-9]/m);
  await shot(page, 'e2e-restart-resumed.png');
  assertNoScriptErrors(page);
  await page.context().close();
  assert.equal((await stopServer(second)).code, 0);
});

test('server restarted mid-job without records: the page says the job is lost and stops', async () => {
  const first = await startServer(['--port', '0', ...FAST]);
  const page = await openPage(first);
  const seen = await stopMidJob(first, page);
  const second = await startServer(['--port', String(first.port), ...FAST]);
  await page.locator('#result.lost').waitFor({ state: 'visible' });
  assert.equal(await text(page, '#result strong'), 'Job lost');
  assert.match(await text(page, '#result p'), /no record of this job/);
  assert.match(await text(page, '#conn'), /closed \(job lost\)/);
  assert.equal(await text(page, '#session'), seen.id);
  // No more reconnects: one connection, closed by the page.
  await sleep(1500);
  const m = (await request(second, 'GET', '/metrics')).body;
  assert.match(m, /^wsm_connections_opened_total 1$/m);
  assert.match(m, /^wsm_connections_closed_total\{cause="peer"\} 1$/m);
  await shot(page, 'e2e-restart-lost.png');
  assertNoScriptErrors(page);
  await page.context().close();
  assert.equal((await stopServer(second)).code, 0);
});

test('the page over https uses wss', async () => {
  const pair = makeCertificate(tempDir('tls'));
  if (!pair) return skip('no openssl to make a certificate');
  const s = await startServer(['--port', '0', '--tls-cert', pair.cert, '--tls-key', pair.key, ...FAST]);
  const page = await openPage(s, { ignoreHTTPSErrors: true });
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.click('#start');
  await expectComplete(page);
  assert.equal(sockets.length, 1);
  assert.match(sockets[0], new RegExp(`^wss://127\\.0\\.0\\.1:${s.port}/api/images_mvp/progress/[0-9a-f]{16}$`));
  assertNoScriptErrors(page);
  await page.context().close();
  assert.equal((await stopServer(s)).code, 0);
});

test('the cleanup button asks for the token and closes the session (4003)', async () => {
  const s = await startServer(['--port', '0', '--admin-token', TOKEN, ...FAST]);
  const page = await openPage(s);
  await page.click('#start');
  await page.locator('#conn.live').waitFor();
  const id = await text(page, '#session');
  const row = page.locator(`#sessions tr[data-session="${id}"]`);
  await waitFor('the job with its viewer in the list', async () =>
    (await row.locator('td').nth(3).textContent()) === '1', 10000);
  await row.locator('button.cleanup').click();
  const dialog = page.locator('#cleanup-dialog');
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await text(page, '#cleanup-id'), id);
  await page.fill('#token', 'wrong');
  await page.click('#cleanup-confirm');
  await waitFor('the refusal', async () => /^401: wrong token/.test(await text(page, '#cleanup-status')));
  assert.ok(await dialog.isVisible());
  await page.fill('#token', TOKEN);
  await page.click('#cleanup-confirm');
  await dialog.waitFor({ state: 'hidden' });
  await waitFor('the page to be told', async () =>
    /session cleaned up on the server \(4003\)/.test(await text(page, '#conn')));
  assert.match(await text(page, '#cleanup-result'), new RegExp(`^Closed 1 connection\\(s\\) of session ${id}\\.$`));
  assert.ok(await page.locator('#reconnect').isVisible());
  // It does not reconnect on its own after a cleanup.
  await sleep(1000);
  assert.match((await request(s, 'GET', '/metrics')).body, /^wsm_connections_opened_total 1$/m);
  await page.context().close();
  assert.equal((await stopServer(s)).code, 0);
});
