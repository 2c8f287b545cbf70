// shim/diagnose against a real JVM, under dash and busybox ash.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startStuckJvm } from '../support/jvm.js';
import { waitFor } from '../../src/util/wait.js';

const script = fileURLToPath(new URL('../../shim/diagnose', import.meta.url));
const busybox = '/bin/busybox';

describe('the diagnostics script against a real JVM', { timeout: 120_000 }, () => {
  let jvm: Awaited<ReturnType<typeof startStuckJvm>>;
  const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-diag-'));
  before(async () => {
    jvm = await startStuckJvm();
  });
  after(() => {
    jvm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (shell: string[], args: string[], env: Record<string, string>) => {
    const r = spawnSync(shell[0]!, [...shell.slice(1), script, ...args], { env: { PATH: process.env.PATH, SICKBAY_DIR: dir, ...env }, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, summary: JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, string | number> };
  };

  for (const shell of [['dash'], ['busybox', 'ash']]) {
    it(`captures a thread dump naming the stuck thread and a class histogram (${shell.join(' ')})`, () => {
      const { code, summary } = run(shell, [], { SICKBAY_DIAG_MATCH: 'StuckApp' });
      assert.equal(code, 0);
      assert.equal(summary.status, 'ok');
      assert.equal(summary.pid, jvm.pid, 'found the JVM by itself');
      assert.equal(summary.threadDump, 'jcmd');
      assert.ok(String(summary.dir).startsWith(`${dir}/diag/`));
      const threads = readFileSync(path.join(String(summary.dir), 'threads.txt'), 'utf8');
      assert.match(threads, /"sickbay-stuck-worker"[^\n]*\n\s+java\.lang\.Thread\.State: BLOCKED/);
      const histogram = readFileSync(path.join(String(summary.dir), 'histogram.txt'), 'utf8');
      assert.match(histogram, /\[B\b/, 'byte arrays in the histogram');
      assert.ok(histogram.split('\n').length > 20);
    });
  }

  it('writes a heap dump only when asked and the space allows', () => {
    const { code, summary } = run(['dash'], ['--heap', '--pid', String(jvm.pid)], {});
    assert.equal(code, 0);
    assert.equal(summary.heapDump, 'jcmd');
    assert.ok(statSync(path.join(String(summary.dir), 'heap.hprof')).size > 100_000);
    const without = run(['dash'], ['--pid', String(jvm.pid)], {});
    assert.equal(without.summary.heapDump, 'not requested');
    assert.ok(!existsSync(path.join(String(without.summary.dir), 'heap.hprof')));
  });

  it("writes no heap dump that would not fit the volume's size limit (the kubelet would evict the pod)", () => {
    const limit = path.join(dir, 'limit-kib');
    try {
      writeFileSync(limit, '2048\n'); // 2 MiB: less than any JVM's resident size
      const small = run(['dash'], ['--heap', '--pid', String(jvm.pid)], {});
      assert.equal(small.code, 0);
      assert.match(String(small.summary.heapDump), /^skipped: -?\d+ KiB left under the volume's 2048 KiB limit, JVM resident \d+ KiB$/);
      assert.ok(!existsSync(path.join(String(small.summary.dir), 'heap.hprof')));
      writeFileSync(limit, `${4 * 1024 * 1024}\n`); // 4 GiB
      const large = run(['busybox', 'ash'], ['--heap', '--pid', String(jvm.pid)], {});
      assert.equal(large.summary.heapDump, 'jcmd');
      assert.ok(statSync(path.join(String(large.summary.dir), 'heap.hprof')).size > 100_000);
    } finally {
      rmSync(limit, { force: true });
    }
  });

  it('skips cleanly where there is no JVM', () => {
    const { code, summary } = run(['dash'], [], { SICKBAY_DIAG_MATCH: 'no-such-program-here' });
    assert.equal(code, 3);
    assert.equal(summary.status, 'skipped');
    assert.match(String(summary.reason), /no JVM/);
  });
});

// The flight recorder as the webhook sets it up: SICKBAY_JFR_OPTIONS on the container, the
// supervisor appending it to the app's JAVA_TOOL_OPTIONS, diagnose dumping the recording.
describe('the flight recorder of a supervised JVM', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-jfr-'));
  const repo = path.join(dir, 'jfr', 'app');
  const env = {
    SICKBAY_DIR: dir,
    SICKBAY_JFR_OPTIONS: `-XX:FlightRecorderOptions=repository=${repo} -XX:StartFlightRecording=name=sickbay,disk=true,maxage=10m,maxsize=16m`,
    // The user's own options, which must survive.
    JAVA_TOOL_OPTIONS: '-Dsickbay.test.user=kept',
  };
  let jvm: Awaited<ReturnType<typeof startStuckJvm>>;
  let startedAt = 0;
  before(async () => {
    startedAt = Date.now();
    jvm = await startStuckJvm({ supervise: ['busybox', 'ash'], env });
  });
  after(() => {
    jvm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const diagnose = (shell: string[], extra: Record<string, string> = {}, pid = jvm.pid) => {
    const r = spawnSync(shell[0]!, [...shell.slice(1), script, '--pid', String(pid)], { env: { PATH: process.env.PATH, ...env, ...extra }, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, summary: JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, string | number> };
  };
  /** What `jfr summary` (the JDK's own reader) says of a recording: its start, and its event types. */
  const summary = (file: string) => {
    const r = spawnSync('jfr', ['summary', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `jfr summary ${file}: ${r.stderr}`);
    const start = /^\s*Start:\s*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s*\(UTC\)/m.exec(r.stdout);
    assert.ok(start, `a start time in:\n${r.stdout}`);
    return { start: Date.parse(`${start[1]!.replace(' ', 'T')}Z`), text: r.stdout };
  };
  const jcmd = (...args: string[]) => spawnSync('jcmd', [String(jvm.latestPid()), ...args], { encoding: 'utf8' }).stdout;

  it("records in the app's JVM, the user's JAVA_TOOL_OPTIONS kept", () => {
    assert.match(jcmd('JFR.check'), /name=sickbay .*running/);
    assert.match(jcmd('VM.system_properties'), /sickbay\.test\.user=kept/);
    assert.ok(readdirSync(repo).some((d) => d.endsWith(`_${jvm.pid}`)), `the JVM's repository folder under ${repo}`);
  });

  for (const shell of [['dash'], ['busybox', 'ash']]) {
    it(`dumps the recording of the minutes before the diagnosis (${shell.join(' ')})`, async () => {
      await new Promise((r) => setTimeout(r, 3_000));
      const { code, summary: s } = diagnose(shell);
      assert.equal(code, 0);
      assert.equal(s.flightRecording, 'jcmd');
      const rec = summary(path.join(String(s.dir), 'flight.jfr'));
      assert.ok(rec.start <= startedAt + 30_000 && rec.start >= startedAt - 60_000, `the recording starts with the JVM (${new Date(rec.start).toISOString()}, JVM started ${new Date(startedAt).toISOString()})`);
      assert.match(rec.text, /jdk\.ThreadPark|jdk\.JavaMonitorWait|jdk\.ExecutionSample|jdk\.CPULoad/, 'JDK events in it');
    });
  }

  it("falls back to the repository's finished chunk files when no tool can ask the JVM", () => {
    // A dump (the JVM's own, or an earlier diagnose) closes the chunk being written.
    jcmd('JFR.dump', 'name=sickbay', `filename=${path.join(dir, 'closing.jfr')}`);
    // A PATH with busybox's tools and no jcmd or jattach.
    const bin = mkdtempSync(path.join(tmpdir(), 'sickbay-bin-'));
    try {
      for (const tool of ['sh', 'sed', 'ls', 'sort', 'cat', 'tr', 'mkdir', 'date', 'rm', 'awk', 'du', 'df', 'mv', 'head', 'tail', 'printf', 'sleep', 'rmdir', 'cp']) symlinkSync(busybox, path.join(bin, tool));
      const { code, summary: s } = diagnose([busybox, 'ash'], { PATH: bin });
      assert.equal(code, 0);
      assert.equal(s.flightRecording, 'chunks', JSON.stringify(s));
      summary(path.join(String(s.dir), 'flight.jfr'));
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('keeps the recording of a JVM that died, and only the newest, across restarts', async () => {
    const first = jvm.latestPid();
    process.kill(first, 'SIGKILL');
    const second = await waitFor('the supervisor to restart the app', () => (jvm.latestPid() !== first ? jvm.latestPid() : undefined), { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 2_000));
    const { summary: s } = diagnose(['dash'], {}, second);
    assert.equal(s.flightRecording, 'jcmd');
    const previous = readdirSync(path.join(String(s.dir), 'flight-previous'));
    assert.ok(previous.some((f) => f.endsWith('.jfr')), `the dead JVM's chunks kept: ${previous.join(' ')}`);
    // Twice more: the repository holds the live JVM's folder and the last dead one's, no more.
    for (let i = 0; i < 2; i++) {
      const before = jvm.latestPid();
      process.kill(before, 'SIGKILL');
      await waitFor('another restart', () => jvm.latestPid() !== before, { timeoutMs: 30_000 });
    }
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(readdirSync(repo).length, 2, readdirSync(repo).join(' '));
  });
});
