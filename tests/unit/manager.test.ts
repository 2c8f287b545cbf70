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

/** An elector the test drives: `win()` starts a term, `lose()` ends it. */
function drivenElector() {
  let lead: ((term: AbortSignal) => void) | undefined;
  let term: AbortController | undefined;
  const elector: Elector = {
    run(signal, l) {
      lead = l;
      return new Promise((resolve) => signal.addEventListener('abort', () => (term?.abort(), resolve()), { once: true }));
    },
  };
  return {
    elector,
    win() {
      term = new AbortController();
      lead!(term.signal);
    },
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
});
