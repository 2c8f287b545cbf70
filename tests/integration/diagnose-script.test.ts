// shim/diagnose against a real JVM, under dash and busybox ash.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startStuckJvm } from '../support/jvm.js';

const script = fileURLToPath(new URL('../../shim/diagnose', import.meta.url));

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
