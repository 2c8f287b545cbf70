// The supervisor shim with real processes, under dash and busybox ash.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../src/util/wait.js';
import { shimHelper } from '../../dev/shim-helper.js';
import { installShim } from '../support/shim.js';

const shim = fileURLToPath(new URL('../../shim/', import.meta.url));
const shells: Array<[string, string[]]> = [
  ['dash', ['dash']],
  ['busybox ash', ['busybox', 'ash']],
];
for (const [name, argv] of shells) {
  const found = spawnSync(argv[0]!, [...argv.slice(1), '-c', 'true']).status === 0;
  // A missing shell is a broken test machine, not a reason to skip: .ci/run installs both.
  assert.ok(found, `${name} is not installed (apt-get install dash busybox)`);
}

const tmp = mkdtempSync(path.join(tmpdir(), 'sickbay-shim-'));
const children: Array<{ kill(sig: NodeJS.Signals): boolean }> = [];
after(() => {
  // A failed assertion must not leave a held supervisor keeping the run open.
  for (const c of children) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

function readState(runDir: string): Record<string, string> {
  try {
    return Object.fromEntries(
      readFileSync(path.join(runDir, 'state'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  } catch {
    return {};
  }
}

// The supervisor as a pod runs it: from the installed shim, sigexec beside it.
const installed = path.join(tmp, 'installed');
installShim(installed);

function supervise(shell: string[], runDir: string, app: string[], env: Record<string, string> = {}, stdin?: string) {
  const child = spawn(shell[0]!, [...shell.slice(1), path.join(installed, 'bin/supervise'), '--name', 'app', '--', ...app], {
    env: { PATH: process.env.PATH, SICKBAY_RUN_DIR: runDir, SICKBAY_BACKOFF_INITIAL: '0', SICKBAY_START_SECS: '5', ...env },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (stdin !== undefined) child.stdin!.end(stdin);
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

function probe(shell: string[], runDir: string) {
  return spawnSync(shell[0]!, [...shell.slice(1), path.join(shim, 'probe'), 'app'], { env: { SICKBAY_RUN_DIR: runDir } }).status;
}

for (const [name, shell] of shells) {
  describe(`supervisor under ${name}`, () => {
    it('ends a crash loop in the held state: the container process stays, the probe fails, the state says why', async () => {
      const runDir = path.join(tmp, `${shell[0]}-crash`);
      const s = supervise(shell, runDir, ['sh', '-c', 'echo started >&2; exit 3'], { SICKBAY_START_RETRIES: '2' });
      const state = await waitFor('the supervisor to give up', () => (readState(runDir).state === 'gave-up' ? readState(runDir) : undefined), { timeoutMs: 10_000 });
      assert.equal(state.last_exit_code, '3');
      assert.equal(state.restarts, '2');
      assert.equal(s.err().match(/started/g)?.length, 3, 'one start and two restarts');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(s.child.exitCode, null, 'the container process is still alive');
      assert.equal(probe(shell, runDir), 1, 'readiness fails once it gave up');
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 3, 'a stop in the held state ends with the last exit code');
    });

    it('forwards SIGTERM to the app and exits with its code', async () => {
      const runDir = path.join(tmp, `${shell[0]}-term`);
      const s = supervise(shell, runDir, ['sh', '-c', 'trap "echo got-term; exit 42" TERM; while :; do sleep 0.05; done']);
      await waitFor('the app to run', () => readState(runDir).state === 'running');
      assert.equal(probe(shell, runDir), 0, 'ready while the app runs');
      await new Promise((r) => setTimeout(r, 200));
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 42);
      assert.match(s.out(), /got-term/);
      assert.equal(readState(runDir).state, 'stopped');
    });

    it('ends the container on an expected exit code', async () => {
      const runDir = path.join(tmp, `${shell[0]}-expected`);
      const s = supervise(shell, runDir, ['sh', '-c', 'exit 7'], { SICKBAY_EXPECTED_EXIT_CODES: '0 7' });
      assert.equal(await s.exited, 7);
      assert.equal(readState(runDir).state, 'exited');
    });

    it('restarts an app that ran long enough, resetting the retry count', async () => {
      const runDir = path.join(tmp, `${shell[0]}-reset`);
      const counter = path.join(runDir, 'count');
      // Runs 1 s then fails: with START_SECS=1 every run counts as a good start.
      const s = supervise(shell, runDir, ['sh', '-c', `echo x >> ${counter}; sleep 1; exit 1`], { SICKBAY_START_RETRIES: '1', SICKBAY_START_SECS: '1' });
      await waitFor('three runs', () => readFileSync(counter, 'utf8').split('\n').length > 3, { timeoutMs: 10_000 });
      assert.notEqual(readState(runDir).state, 'gave-up');
      s.child.kill('SIGTERM');
      await s.exited;
    });

    it("passes every catchable signal on to the app, INT and QUIT included, and the container's stdin", async () => {
      const runDir = path.join(tmp, `${shell[0]}-signals`);
      mkdirSync(runDir, { recursive: true });
      const got = path.join(runDir, 'got');
      const signals = ['QUIT', 'USR1', 'USR2', 'WINCH', 'ALRM', 'URG', 'HUP', 'INT'] as const;
      const traps = signals.map((sig) => `trap 'echo ${sig} >> ${got}' ${sig};`).join(' ');
      const s = supervise(shell, runDir, ['sh', '-c', `${traps} read line; echo "stdin:$line" >> ${got}; while :; do sleep 0.05; done`], {}, 'hello from the container\n');
      const lines = () => (existsSync(got) ? readFileSync(got, 'utf8').trim().split('\n') : []);
      await waitFor("the app's stdin", () => lines().includes('stdin:hello from the container'));
      for (const sig of signals) {
        s.child.kill(`SIG${sig}`);
        await waitFor(`the app to get ${sig}`, () => lines().includes(sig), { timeoutMs: 5_000 });
      }
      assert.equal(s.child.exitCode, null, 'the app trapped them all: still running');
      s.child.kill('SIGTERM');
      assert.equal(await s.exited, 143, 'TERM: the app ends by it, and so does the supervisor');
    });

    it('passes tricky arguments to the app byte for byte', async () => {
      const runDir = path.join(tmp, `${shell[0]}-args`);
      const args = ['with spaces', `"double" and 'single'`, '$PATH', '*', 'line one\nline two', 'back\\slash', '', '-e', '--', 'ünïcode'];
      const s = supervise(shell, runDir, ['printf', '[%s]\\n', ...args]);
      assert.equal(await s.exited, 0);
      assert.equal(s.out(), args.map((a) => `[${a}]\n`).join(''));
    });
  });
}

// The installer (the init container, uid 65532) and an app container of another uid:
// the app's supervisor and its diagnostics must be able to write into what it made.
describe('shim installed by one uid, used by another', () => {
  const root = path.join(tmp, 'uids');
  const vol = path.join(root, 'vol');
  const as = (uid: number, argv: string[], env: Record<string, string> = {}) =>
    spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv], { env: { PATH: process.env.PATH, SICKBAY_DIR: vol, ...env }, encoding: 'utf8' });

  it('an app running as 1000 or 65532 or root writes its supervisor state and diagnostics output', () => {
    // What the kubelet gives an emptyDir: a world-writable folder.
    chmodSync(tmp, 0o755);
    mkdirSync(vol, { recursive: true });
    chmodSync(root, 0o755);
    chmodSync(vol, 0o777);
    const installerSrc = path.join(root, 'image-shim');
    cpSync(shim, installerSrc, { recursive: true });
    copyFileSync('/bin/busybox', path.join(installerSrc, 'busybox'));
    copyFileSync(shimHelper(), path.join(installerSrc, 'sigexec'));
    chmodSync(installerSrc, 0o755);
    const installed = as(65532, ['sh', path.join(installerSrc, 'install'), vol, '262144']);
    assert.equal(installed.status, 0, installed.stderr);
    assert.equal(readFileSync(path.join(vol, 'limit-kib'), 'utf8'), '262144\n', "the volume's limit, for diagnose");
    for (const uid of [1000, 65532, 0]) {
      const name = `app${uid}`;
      const r = as(uid, ['sh', path.join(vol, 'bin/supervise'), '--name', name, '--', 'sh', '-c', 'exit 0']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(readFileSync(path.join(vol, 'run', name, 'state'), 'utf8'), /^state=exited$/m, `uid ${uid} wrote its state`);
      const mk = as(uid, ['sh', '-c', `mkdir -p "$SICKBAY_DIR/diag/by-${uid}" && echo ok > "$SICKBAY_DIR/diag/by-${uid}/threads.txt"`]);
      assert.equal(mk.status, 0, `uid ${uid} can write diagnostics: ${mk.stderr}`);
    }
    // The sticky bit: one container's user cannot remove another's state.
    const rm = as(1000, ['rm', '-rf', path.join(vol, 'run', 'app65532')]);
    assert.notEqual(rm.status, 0);
  });

  // The image volume: no installer, the shim read-only in bin/, the volume empty but for it.
  it('with no installer, the first supervisor of any uid makes run/ and diag/ for all and records the limit', () => {
    const bare = path.join(root, 'from-image');
    const bin = path.join(bare, 'bin');
    cpSync(shim, bin, { recursive: true });
    chmodSync(bare, 0o777);
    chmodSync(bin, 0o555);
    const env = { SICKBAY_DIR: bare };
    const first = as(1000, ['sh', path.join(bin, 'supervise'), '--name', 'a', '--limit-kib', '131072', '--', 'sh', '-c', 'exit 0'], env);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(readFileSync(path.join(bare, 'limit-kib'), 'utf8'), '131072\n', "the volume's limit, for diagnose");
    for (const d of ['run', 'diag']) assert.equal(statSync(path.join(bare, d)).mode & 0o7777, 0o1777, `${d}/ is open to every uid, sticky`);
    const second = as(65532, ['sh', path.join(bin, 'supervise'), '--name', 'b', '--', 'sh', '-c', 'exit 0'], env);
    assert.equal(second.status, 0, second.stderr);
    assert.match(readFileSync(path.join(bare, 'run/b/state'), 'utf8'), /^state=exited$/m, 'another uid wrote its state');
    const mk = as(65532, ['sh', '-c', `mkdir -p "$SICKBAY_DIR/diag/b" && echo ok > "$SICKBAY_DIR/diag/b/threads.txt"`], env);
    assert.equal(mk.status, 0, `another uid can write diagnostics: ${mk.stderr}`);
    assert.notEqual(as(65532, ['rm', '-rf', path.join(bare, 'run/a')], env).status, 0, "one container's user cannot remove another's state");
  });

  it('the installer fails loudly when the image lacks the static busybox', () => {
    const bare = path.join(root, 'bare-shim');
    cpSync(shim, bare, { recursive: true });
    const r = spawnSync('sh', [path.join(bare, 'install'), path.join(root, 'vol2')], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /busybox is missing/);
  });
});

// `probe --live`: the user's liveness check, except while the scene is kept.
for (const [name, argv] of shells) {
  describe(`liveness wrapper under ${name}`, () => {
    const dir = path.join(tmp, `live-${argv[0]}`);
    let server: http.Server;
    let port = 0;
    let closedPort = 0;
    before(async () => {
      mkdirSync(path.join(dir, 'bin'), { recursive: true });
      mkdirSync(path.join(dir, 'run/app'), { recursive: true });
      mkdirSync(path.join(dir, 'pod'), { recursive: true });
      copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'));
      server = http.createServer((req, res) => {
        if (req.url === '/hang') return; // never answers
        res.statusCode = req.url === '/ok' && req.headers['x-probe'] !== 'bad' ? 200 : 500;
        res.end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
      const s2 = http.createServer();
      await new Promise<void>((r) => s2.listen(0, '127.0.0.1', r));
      closedPort = (s2.address() as AddressInfo).port;
      await new Promise((r) => s2.close(r));
    });
    after(() => server.close());

    // Asynchronous: the HTTP server answering the check runs in this process.
    const live = (args: string[]) =>
      new Promise<number | null>((resolve) => {
        const c = spawn(argv[0]!, [...argv.slice(1), path.join(shim, 'probe'), '--live', 'app', '--timeout', '1', ...args], { env: { PATH: process.env.PATH, SICKBAY_DIR: dir }, stdio: 'ignore' });
        c.on('exit', (code) => resolve(code));
      });
    const setState = (state: string) => writeFileSync(path.join(dir, 'run/app/state'), `state=${state}\n`);
    const setLabels = (labels: string) => writeFileSync(path.join(dir, 'pod/labels'), labels);

    it('runs the check as written while the app runs', async () => {
      setState('running');
      setLabels('app="web"\n');
      assert.equal(await live(['http', 'http', '127.0.0.1', String(port), '/ok']), 0);
      assert.notEqual(await live(['http', 'http', '127.0.0.1', String(port), '/fail']), 0, 'HTTP 500 fails');
      assert.notEqual(await live(['http', 'http', '127.0.0.1', String(port), '/ok', 'X-Probe: bad']), 0, 'headers are sent');
      assert.notEqual(await live(['http', 'http', '127.0.0.1', String(port), '/hang']), 0, 'a hanging check times out');
      assert.equal(await live(['tcp', '127.0.0.1', String(port)]), 0);
      assert.notEqual(await live(['tcp', '127.0.0.1', String(closedPort)]), 0);
      assert.equal(await live(['exec', '--', 'sh', '-c', 'exit 0']), 0);
      assert.equal(await live(['exec', '--', 'sh', '-c', 'exit 4']), 4);
      // The wrapper holds an exec check to the written timeout (the kubelet's is longer: room for the exec).
      const started = Date.now();
      assert.notEqual(await live(['exec', '--', 'sh', '-c', 'sleep 5']), 0, 'an exec check past its timeout fails');
      assert.ok(Date.now() - started < 3_000, `cut off at the written 1 s, not the kubelet's (${Date.now() - started} ms)`);
    });

    it('passes whatever the check says once the supervisor has given up', async () => {
      setState('gave-up');
      setLabels('app="web"\n');
      assert.equal(await live(['tcp', '127.0.0.1', String(closedPort)]), 0);
      assert.equal(await live(['exec', '--', 'sh', '-c', 'exit 4']), 0);
    });

    it('passes once the pod is quarantined, fails again when it is not', async () => {
      setState('running');
      setLabels('app="web"\nsickbay.io/status="quarantined"\n');
      assert.equal(await live(['http', 'http', '127.0.0.1', String(closedPort), '/ok']), 0);
      setLabels('sickbay.io/status="released"\n');
      assert.notEqual(await live(['http', 'http', '127.0.0.1', String(closedPort), '/ok']), 0);
    });

    it("while the supervisor restarts the app: passes in its back-off and within the container's start allowance after each start, then runs the check (issue 25)", async () => {
      setLabels('app="web"\n');
      const failing = ['tcp', '127.0.0.1', String(closedPort)];
      const now = Math.floor(Date.now() / 1000);
      writeFileSync(path.join(dir, 'run/app/state'), 'state=backoff\nrestarts=1\n');
      assert.equal(await live(failing), 0, 'in its back-off the app is not dead, it is waiting');
      writeFileSync(path.join(dir, 'run/app/state'), `state=running\nrestarts=1\nstarted_at=${now - 5}\n`);
      assert.equal(await live(['--start-allowance', '20', ...failing]), 0, 'started 5 s ago, 20 s allowed');
      assert.notEqual(await live(failing), 0, 'no allowance given: the check as written');
      writeFileSync(path.join(dir, 'run/app/state'), `state=running\nrestarts=1\nstarted_at=${now - 25}\n`);
      assert.notEqual(await live(['--start-allowance', '20', ...failing]), 0, 'past the allowance: the check as written');
      assert.equal(await live(['--start-allowance', '20', 'exec', '--', 'sh', '-c', 'exit 0']), 0);
    });

    it('passes for 120 s after `probe --hold` (sickbay quarantining), before the labels file catches up', async () => {
      setState('running');
      setLabels('app="web"\n');
      const failing = ['http', 'http', '127.0.0.1', String(closedPort), '/ok'];
      assert.notEqual(await live(failing), 0);
      assert.equal(spawnSync(argv[0]!, [...argv.slice(1), path.join(shim, 'probe'), '--hold'], { env: { PATH: process.env.PATH, SICKBAY_DIR: dir } }).status, 0);
      assert.equal(await live(failing), 0, 'held');
      writeFileSync(path.join(dir, 'run/hold'), `${Math.floor(Date.now() / 1000) - 121}\n`);
      assert.notEqual(await live(failing), 0, 'a hold older than 120 s is over');
      rmSync(path.join(dir, 'run/hold'));
    });
  });
}

// `diagnose`: one per container at a time (issue 27). A second one, started while the first
// still dumps (a new leader's), waits for it and reports the first's result; nothing is dumped twice.
for (const [name, shell] of shells) {
  describe(`diagnose under ${name}`, () => {
    const dir = path.join(tmp, `diag-${shell[0]}`);
    const bin = path.join(dir, 'fakebin');
    const calls = path.join(dir, 'jcmd-calls');
    before(() => {
      mkdirSync(bin, { recursive: true });
      // A jcmd that takes 2 s per thread dump and counts its calls.
      writeFileSync(path.join(bin, 'jcmd'), `#!/bin/sh\necho "$2" >> "${calls}"\n[ "$2" = Thread.print ] && sleep 2\necho "dump of $1: $2"\n`);
      chmodSync(path.join(bin, 'jcmd'), 0o755);
    });
    const diagnose = (target: number) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(shell[0]!, [...shell.slice(1), path.join(shim, 'diagnose'), '--pid', String(target)], { env: { PATH: `${bin}:${process.env.PATH}`, SICKBAY_DIR: dir } });
        let out = '';
        let err = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (err += d));
        c.on('exit', (code) => resolve({ code, out, err }));
      });

    it('two started at once: one dump, the second waits and reports the first one\'s result', async () => {
      rmSync(calls, { force: true });
      const app = spawn('sleep', ['30']);
      children.push(app);
      const first = diagnose(app.pid!);
      await new Promise((r) => setTimeout(r, 300));
      const second = diagnose(app.pid!);
      const [a, b] = await Promise.all([first, second]);
      app.kill('SIGKILL');
      assert.equal(a.code, 0, a.err);
      assert.equal(b.code, 0, b.err);
      assert.match(b.err, /another diagnose \(pid \d+\) is running; waiting for it/);
      assert.equal(b.out.trim(), a.out.trim(), 'the same result: the same folder');
      assert.equal(readFileSync(calls, 'utf8').split('\n').filter((l) => l === 'Thread.print').length, 1, 'one thread dump, not two');
      assert.ok(!existsSync(path.join(dir, 'run/diagnose.lock')), 'the lock is released');
    });

    it('takes over the lock of a diagnose that is gone', async () => {
      rmSync(calls, { force: true });
      mkdirSync(path.join(dir, 'run/diagnose.lock'), { recursive: true });
      writeFileSync(path.join(dir, 'run/diagnose.lock/pid'), '999999\n'); // no such process
      const app = spawn('sleep', ['30']);
      children.push(app);
      const r = await diagnose(app.pid!);
      app.kill('SIGKILL');
      assert.equal(r.code, 0, r.err);
      assert.match(r.err, /taking over the lock of a diagnose that is gone \(pid 999999\)/);
      assert.match(r.out, /"status":"ok"/);
    });
  });
}
