// The e2e tests' npm packages and headless Chromium. The packages are
// pinned by package.json and package-lock.json (exact versions) and
// installed with npm ci into E2E_NODE_DIR in the build directory, never into
// the source tree, once for all of them. Chromium is Debian's, started with
// the flags below and a fresh profile; playwright-core connects to it over
// CDP.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before } from 'node:test';

import { atExit, skip, tempDir, waitFor } from './lib.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--no-first-run', '--disable-component-update',
  '--disable-sync', '--disable-quic'];

// The directory holding node_modules with every package of the lock at its
// pinned version, installing them if one is missing or at another version;
// skips (77) without npm or the registry.
export function pinnedNodeDir() {
  const nodeDir = process.env.E2E_NODE_DIR;
  const pkgDir = process.env.E2E_PACKAGE_DIR || process.cwd();
  if (!nodeDir) skip('E2E_NODE_DIR is not set (run through meson test)');
  const lock = JSON.parse(readFileSync(join(pkgDir, 'package-lock.json'), 'utf8'));
  const wanted = Object.entries(lock.packages)
    .filter(([path]) => path.startsWith('node_modules/'))
    .map(([path, p]) => [path, p.version]);
  const stale = wanted.filter(([path, version]) => {
    const installed = join(nodeDir, path, 'package.json');
    return !existsSync(installed) ||
      JSON.parse(readFileSync(installed, 'utf8')).version !== version;
  });
  if (stale.length) {
    const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
    if (npm.error || npm.status !== 0) skip('npm is not installed (.ci/install-deps installs it)');
    mkdirSync(nodeDir, { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(pkgDir, f), join(nodeDir, f));
    const what = stale.map(([path, v]) => `${path.slice('node_modules/'.length)} ${v}`).join(', ');
    console.log(`installing ${what} into ${nodeDir}`);
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts',
      '--loglevel=error'], { cwd: nodeDir, encoding: 'utf8', timeout: 300000 });
    if (r.status !== 0)
      skip(`npm ci could not install ${what} (is the npm registry reachable?): ` +
           `${(r.stderr || String(r.error)).trim().split('\n').slice(-3).join(' / ')}`);
  }
  return nodeDir;
}

// A pinned package, loaded.
export function loadPinned(name) {
  return createRequire(join(pinnedNodeDir(), 'package.json'))(name);
}

// Starts Chromium with a fresh profile and lets it pick its DevTools port,
// which it writes to DevToolsActivePort in the profile; connects
// playwright-core's chromium to it. Resolves to { browser, proc }.
export async function launchChromium(chromium) {
  if (!existsSync(CHROMIUM))
    skip(`no Chromium at ${CHROMIUM} (Debian package chromium; .ci/install-deps installs it)`);
  const profile = tempDir('chromium');
  const proc = spawn(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`,
    '--remote-debugging-port=0', '--remote-debugging-address=127.0.0.1', 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  atExit(() => proc.kill('SIGKILL'));
  const portFile = join(profile, 'DevToolsActivePort');
  const text = await waitFor('Chromium to open its DevTools port', () => {
    if (proc.exitCode !== null) throw new Error(`Chromium exited: ${log}`);
    const t = existsSync(portFile) && readFileSync(portFile, 'utf8');
    return t && t.split('\n').length >= 2 && t;
  }, 30000);
  const [port, path] = text.split('\n');
  const browser = await chromium.connectOverCDP(`ws://127.0.0.1:${port}${path}`, { timeout: 30000 });
  return { browser, proc };
}

// Chromium for a test file: launched before its first test, ready(browser)
// called, closed after its last. Skips (77) without Chromium or the package.
export function useChromium(ready) {
  if (!existsSync(CHROMIUM))
    skip(`no Chromium at ${CHROMIUM} (Debian package chromium; .ci/install-deps installs it)`);
  const { chromium } = loadPinned('playwright-core');
  let browser, proc;
  before(async () => {
    ({ browser, proc } = await launchChromium(chromium));
    ready(browser);
  });
  after(async () => {
    await browser?.close().catch(() => {});
    proc?.kill('SIGTERM');
  });
}
