// clients/browser as a package: `npm install <path>` into a fresh project
// (copied, as from a git URL, not linked) installs the files package.json
// names; Node imports it by its name; and tsc --strict, at the version
// package-lock.json pins, checks client-types.mts against its declarations,
// whose @ts-expect-error lines must each fail: without the directives tsc
// reports exactly that many errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { skip, tempDir } from './lib.mjs';
import { pinnedNodeDir } from './pinned.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE = join(HERE, '..', '..', 'clients', 'browser');
const FIXTURE = join(HERE, 'client-types.mts');

const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
if (npm.error || npm.status !== 0) skip('npm is not installed (.ci/install-deps installs it)');
const TSC = join(pinnedNodeDir(), 'node_modules', 'typescript', 'bin', 'tsc');

// A project with the client installed from its directory, offline: it has
// no dependencies to fetch.
const app = tempDir('client-app');
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
const installed = spawnSync('npm', ['install', '--install-links', '--offline', '--no-audit',
  '--no-fund', '--loglevel=error', PACKAGE], { cwd: app, encoding: 'utf8', timeout: 120000 });
const pkgDir = join(app, 'node_modules', '@libwsm', 'client');

function tsc(file) {
  const r = spawnSync(process.execPath, [TSC, '--noEmit', '--strict', '--target', 'es2022',
    '--module', 'nodenext', '--moduleResolution', 'nodenext', '--lib', 'es2022,dom',
    '--pretty', 'false', file], { cwd: app, encoding: 'utf8', timeout: 120000 });
  return { status: r.status, out: (r.stdout + r.stderr).trim() };
}

test('npm install <path> installs the module, its declarations and README, nothing else', () => {
  assert.equal(installed.status, 0, installed.stderr);
  assert.deepEqual(readdirSync(pkgDir).sort(),
    ['README.md', 'package.json', 'wsm-client.d.ts', 'wsm-client.js']);
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const project = readFileSync(join(HERE, '..', '..', 'meson.build'), 'utf8');
  assert.equal(pkg.version, /version: '([^']+)'/.exec(project)[1], 'the project version');
  assert.equal(pkg.license, 'MIT');
});

test('Node imports it by its name', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    "const m = await import('@libwsm/client'); console.log(typeof m.WsmClient, m.default === m.WsmClient, m.WsmState.WAITING_RETRY)"],
  { cwd: app, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'function true waiting-retry');
});

test('tsc --noEmit --strict accepts the typed uses and each @ts-expect-error bites', () => {
  const version = spawnSync(process.execPath, [TSC, '--version'], { encoding: 'utf8' });
  console.log(version.stdout.trim());
  writeFileSync(join(app, 'uses.mts'), readFileSync(FIXTURE, 'utf8'));
  const good = tsc('uses.mts');
  assert.equal(good.status, 0, good.out);

  const source = readFileSync(FIXTURE, 'utf8');
  const expected = source.match(/^\/\/ @ts-expect-error/gm).length;
  writeFileSync(join(app, 'loose.mts'), source.replace(/^\/\/ @ts-expect-error.*$/gm, ''));
  const bad = tsc('loose.mts');
  assert.notEqual(bad.status, 0);
  const errors = bad.out.split('\n').filter((l) => /^loose\.mts\(\d+,\d+\): error TS\d+/.test(l));
  assert.equal(errors.length, expected, bad.out);
});

// npm cannot install a subdirectory of a git repository, so the root's
// package.json names the same module for `npm install <git url>`. What a
// git URL gives is the committed tree: a clone's HEAD, here through
// git+file, offline.
test('npm install <git url> installs the same module, importable by its name', (t) => {
  const root = join(HERE, '..', '..');
  const head = spawnSync('git', ['-C', root, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' });
  if (head.status !== 0) {
    t.skip('the source tree is not a git checkout');
    return;
  }
  const gitApp = tempDir('client-git-app');
  writeFileSync(join(gitApp, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const r = spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error',
    `git+file://${root}`], { cwd: gitApp, encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, r.stderr);
  const dir = join(gitApp, 'node_modules', '@libwsm', 'client');
  const root_pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const sub_pkg = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8'));
  assert.equal(root_pkg.version, sub_pkg.version, 'package.json and clients/browser/package.json');
  assert.equal(readFileSync(join(dir, 'clients', 'browser', 'wsm-client.js'), 'utf8'),
    readFileSync(join(PACKAGE, 'wsm-client.js'), 'utf8'));
  const imported = spawnSync(process.execPath, ['--input-type=module', '-e',
    "const m = await import('@libwsm/client'); console.log(typeof m.WsmClient)"],
  { cwd: gitApp, encoding: 'utf8', timeout: 30000 });
  assert.equal(imported.status, 0, imported.stderr);
  assert.equal(imported.stdout.trim(), 'function');
});
