// The logger, and what serve and agent do with an unhandled error: one JSON line, exit 1.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/core/log.js';
import { sleep } from '../../src/util/wait.js';

describe('createLogger', () => {
  it('writes lines at and above its level, from children too, and nothing below', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger('info', stream);
    const child = log.child({ component: 'x' });
    child.debug('hidden');
    child.info('shown', { pod: 'shop/a' });
    log.warn('also shown');
    createLogger('debug', stream).child({ component: 'y' }).debug('debug shown');
    await sleep(10);
    const messages = lines.map((l) => JSON.parse(l) as { message: string; component?: string; pod?: string });
    assert.deepEqual(messages.map((m) => m.message), ['shown', 'also shown', 'debug shown']);
    assert.equal(messages[0]!.component, 'x');
    assert.equal(messages[0]!.pod, 'shop/a');
  });

  it("writes a line as winston's json format did: keys in order at every depth, the line's own meta over its context's", () => {
    const lines: string[] = [];
    const stream = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) });
    createLogger('info', stream).child({ zeta: 1, component: 'x', node: 'from-context' }).info('hello', { node: 'n', alpha: 2, nested: { b: 1, a: 2 }, list: [{ d: 1, c: 2 }] });
    assert.match(lines[0]!, /^\{"alpha":2,"component":"x","level":"info","list":\[\{"c":2,"d":1\}\],"message":"hello","nested":\{"a":2,"b":1\},"node":"n","timestamp":"[^"]+","zeta":1\}\n$/);
  });

  it('never loses a line to what its meta holds: an Error as its stack, a cycle and a BigInt as markers', () => {
    const lines: string[] = [];
    const stream = new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) });
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    createLogger('info', stream).error('odd meta', { error: new Error('boom'), cycle, big: 10n });
    const line = JSON.parse(lines[0]!) as { error: string; cycle: { self: string }; big: string };
    assert.match(line.error, /^Error: boom\n\s+at /);
    assert.equal(line.cycle.self, '[Circular]');
    assert.equal(line.big, '10');
  });

  it('refuses a level it does not know', () => {
    assert.throws(() => createLogger('verbose'), /log level "verbose": one of error, warn, info, debug/);
  });
});

describe('the process guard of serve and agent', () => {
  it('logs an unhandled rejection as one JSON line and exits 1 instead of running on', () => {
    const log = fileURLToPath(new URL('../../src/core/log.ts', import.meta.url));
    const script = `import { exitOnUnhandled } from ${JSON.stringify(log)}; exitOnUnhandled('serve'); Promise.reject(new Error('lost write')); setTimeout(() => {}, 10_000);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1);
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
    assert.equal(line.level, 'error');
    assert.match(line.message, /unhandled promise rejection/);
    assert.match(line.error, /lost write/);
  });
});
