// The manager's start order: runnables without leadership at once, leader-only ones
// after the caches have synced and only for a term won, each term with its own signal.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { type Elector, Manager, type Runnable } from '../../src/manager/manager.js';
import { createLogger } from '../../src/core/log.js';

const log = createLogger('error');
const tick = () => new Promise((r) => setImmediate(r));

/** A runnable that records its starts and runs until its signal aborts. */
function recording(name: string, needsLeadership: boolean, events: string[], signals: AbortSignal[] = []): Runnable {
  return {
    name,
    needsLeadership,
    start(signal) {
      events.push(`start ${name}`);
      signals.push(signal);
      return new Promise((resolve) => signal.addEventListener('abort', () => (events.push(`stop ${name}`), resolve()), { once: true }));
    },
  };
}

/** An elector the test drives: `win()` starts a term, `lose()` ends it; `resigned` holds what the manager resigned for. */
function drivenElector() {
  let lead: Parameters<Elector['run']>[1] | undefined;
  let term: AbortController | undefined;
  const resigned: Array<{ why: string; backoffMs: number }> = [];
  const elector: Elector = {
    run(signal, l) {
      lead = l;
      return new Promise((resolve) => signal.addEventListener('abort', () => (term?.abort(), resolve()), { once: true }));
    },
  };
  return {
    elector,
    win() {
      const t = new AbortController();
      term = t;
      lead!(t.signal, (why, backoffMs) => {
        resigned.push({ why, backoffMs });
        t.abort();
      });
    },
    resigned,
    lose() {
      term!.abort();
    },
    get campaigning() {
      return lead !== undefined;
    },
  };
}

describe('Manager', () => {
  it('starts leader-only runnables after the caches have synced', async () => {
    const events: string[] = [];
    let synced!: () => void;
    const caches = new Promise<void>((r) => (synced = r));
    const m = new Manager({
      runnables: [recording('controllers', true, events), recording('informers', false, events)],
      waitForCaches: () => caches.then(() => void events.push('synced')),
      log,
    });
    const stop = new AbortController();
    const done = m.run(stop.signal);
    await tick();
    assert.deepEqual(events, ['start informers'], 'leader work waits for the caches');
    synced();
    await tick();
    assert.deepEqual(events, ['start informers', 'synced', 'start controllers']);
    stop.abort();
    await done;
    assert.deepEqual(events.slice(3).sort(), ['stop controllers', 'stop informers']);
  });

  it('campaigns only once the caches have synced, and runs leader work once per term with the term\'s signal', async () => {
    const events: string[] = [];
    const signals: AbortSignal[] = [];
    let synced!: () => void;
    const caches = new Promise<void>((r) => (synced = r));
    const e = drivenElector();
    const stop = new AbortController();
    const done = new Manager({ runnables: [recording('controllers', true, events, signals)], elector: e.elector, waitForCaches: () => caches, log }).run(stop.signal);
    await tick();
    assert.equal(e.campaigning, false, 'no campaign before the caches have synced');
    synced();
    await tick();
    assert.equal(e.campaigning, true);
    assert.deepEqual(events, [], 'nothing runs before a term is won');
    e.win();
    e.lose();
    await tick();
    e.win();
    await tick();
    assert.deepEqual(events, ['start controllers', 'stop controllers', 'start controllers'], 'a new term starts anew');
    assert.equal(signals.length, 2);
    assert.notEqual(signals[0], signals[1], 'each term its own signal');
    assert.equal(signals[0]!.aborted, true);
    stop.abort();
    await done;
    assert.equal(signals[1]!.aborted, true, 'stopping the manager ends the term');
  });

  it('leads from the start without an elector, and reports the first runnable not ready', async () => {
    const events: string[] = [];
    let ready = false;
    const m = new Manager({
      runnables: [{ ...recording('informers', false, events), notReadyReason: () => (ready ? undefined : 'caches not synced') }, recording('controllers', true, events)],
      log,
    });
    assert.equal(m.notReadyReason(), 'informers: caches not synced');
    ready = true;
    assert.equal(m.notReadyReason(), undefined);
    const stop = new AbortController();
    const done = m.run(stop.signal);
    await tick();
    assert.deepEqual(events, ['start informers', 'start controllers']);
    stop.abort();
    await done;
  });

  it('logs a runnable that fails and keeps the others running', async () => {
    const events: string[] = [];
    const lines: string[] = [];
    const failing: Runnable = { name: 'broken', needsLeadership: false, start: () => Promise.reject(new Error('boom')) };
    const capture = createLogger('error', new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }));
    const stop = new AbortController();
    const done = new Manager({ runnables: [failing, recording('informers', false, events)], log: capture }).run(stop.signal);
    await tick();
    assert.deepEqual(events, ['start informers']);
    assert.ok(lines.some((l) => l.includes('broken') && l.includes('boom')), lines.join('\n'));
    stop.abort();
    await done;
  });

  it('a leader runnable that throws ends the term: the others in it stop, the elector resigns with why and a backoff that doubles', async () => {
    const events: string[] = [];
    const failed: string[] = [];
    let starts = 0;
    const throwing: Runnable = {
      name: 'pod-isolation',
      needsLeadership: true,
      start: async () => {
        starts++;
        throw new Error('cannot read its config');
      },
    };
    const e = drivenElector();
    const stop = new AbortController();
    const done = new Manager({ runnables: [throwing, recording('controllers', true, events)], elector: e.elector, log, onTermFailed: (name) => failed.push(name), termBackoffMs: 1_000 }).run(stop.signal);
    await tick();
    e.win();
    await tick();
    await tick();
    assert.deepEqual(events, ['start controllers', 'stop controllers'], 'the term ended: the other leader runnable stopped');
    assert.equal(e.resigned.length, 1);
    assert.match(e.resigned[0]!.why, /^pod-isolation: .*cannot read its config/);
    assert.equal(e.resigned[0]!.backoffMs, 1_000);
    e.win();
    await tick();
    await tick();
    assert.equal(starts, 2);
    assert.equal(e.resigned[1]!.backoffMs, 2_000, 'a second failed term in a row waits twice as long');
    assert.deepEqual(failed, ['pod-isolation', 'pod-isolation'], 'each failed term counted');
    stop.abort();
    await done;
  });

  it('a leader runnable that returns while the term goes on ends it too; one that returns because the term ended does not', async () => {
    const e = drivenElector();
    const stop = new AbortController();
    let quit = true;
    const quitting: Runnable = { name: 'node-controller', needsLeadership: true, start: (signal) => (quit ? Promise.resolve() : new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }))) };
    const done = new Manager({ runnables: [quitting], elector: e.elector, log, termBackoffMs: 1_000 }).run(stop.signal);
    await tick();
    e.win();
    await tick();
    assert.equal(e.resigned.length, 1);
    assert.match(e.resigned[0]!.why, /node-controller: returned while still leading/);
    quit = false;
    e.win();
    await tick();
    e.lose();
    await tick();
    assert.equal(e.resigned.length, 1, 'a term lost to the elector is not a failure');
    stop.abort();
    await done;
  });

  it('without an elector, a failed term is followed by a new one after the backoff', async () => {
    let starts = 0;
    const flaky: Runnable = {
      name: 'controllers',
      needsLeadership: true,
      start: (signal) => {
        starts++;
        return starts === 1 ? Promise.reject(new Error('boom')) : new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
      },
    };
    const stop = new AbortController();
    const done = new Manager({ runnables: [flaky], log, termBackoffMs: 50 }).run(stop.signal);
    await tick();
    assert.equal(starts, 1);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(starts, 2, 'started again after the backoff');
    stop.abort();
    await done;
  });
});
