// The supervisor shim with real processes, under dash and busybox ash.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../src/util/wait.js';

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

function supervise(shell: string[], runDir: string, app: string[], env: Record<string, string> = {}) {
  const child = spawn(shell[0]!, [...shell.slice(1), path.join(shim, 'supervise'), '--name', 'app', '--', ...app], {
    env: { PATH: process.env.PATH, SICKBAY_RUN_DIR: runDir, SICKBAY_BACKOFF_INITIAL: '0', SICKBAY_START_SECS: '5', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
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

    it('passes tricky arguments to the app byte for byte', async () => {
      const runDir = path.join(tmp, `${shell[0]}-args`);
      const args = ['with spaces', `"double" and 'single'`, '$PATH', '*', 'line one\nline two', 'back\\slash', '', '-e', '--', 'ünïcode'];
      const s = supervise(shell, runDir, ['printf', '[%s]\\n', ...args]);
      assert.equal(await s.exited, 0);
      assert.equal(s.out(), args.map((a) => `[${a}]\n`).join(''));
    });
  });
}
