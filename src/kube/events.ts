// Kubernetes Events: every destructive or skipped action leaves one behind. Recording an
// Event never fails the action that caused it, and never holds it up: Event writes wait
// their turn behind one gate per process (a few in flight, a bounded queue), so a burst
// of 50 quarantines sends its 50 patches first, not 50 patches among 100 Events
// (client-go's broadcaster queues Events the same way). `serve` makes the one gate of
// the process and hands it to every recorder; the gate counts what came of each Event
// (sickbay_events_total).
import { randomBytes } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from '../core/log.js';
import type { EventReason } from '../core/event-reasons.js';
import { callWithin, errorText } from './api.js';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

/** The API version of each kind sickbay writes Events about. */
const API_VERSIONS: Record<string, string> = { Pod: 'v1', Node: 'v1', Namespace: 'v1', Deployment: 'apps/v1', ReplicaSet: 'apps/v1', StatefulSet: 'apps/v1', DaemonSet: 'apps/v1', Job: 'batch/v1', CronJob: 'batch/v1', Lease: 'coordination.k8s.io/v1' };

/** The one way an Event's object is named: a kind and an object's metadata (or just a name). */
export function refOf(kind: string, obj: { metadata?: { name?: string; namespace?: string; uid?: string } } | { name: string; namespace?: string; uid?: string }): ObjectRef {
  const m = 'metadata' in obj ? (obj.metadata ?? {}) : (obj as { name: string; namespace?: string; uid?: string });
  // A kind not listed (a custom workload controller owning the pod): named as a workload;
  // an Event finds its object by kind, namespace and name.
  const apiVersion = API_VERSIONS[kind] ?? 'apps/v1';
  return { apiVersion, kind, name: m.name ?? '', ...(m.namespace ? { namespace: m.namespace } : {}), ...(m.uid ? { uid: m.uid } : {}) };
}

/** Where a component's Events go: the process's one gate, and the instance that reports them. */
export interface EventSink {
  gate: EventGate;
  host: string;
}

/**
 * What has been said, per key (an object, or an object and a reason): each thing once,
 * until what is said of the key changes, the key is forgotten (the episode ended), or, with
 * a window, the window has passed. Bounded: past `max` keys the oldest said is dropped (it
 * may then be said again), so a controller that meets a million pods keeps 10,000 entries.
 */
export class Notices {
  private readonly said = new Map<string, { what: string; at: number }>();

  constructor(
    readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True, and remembered, when `what` has not been said of `key` (within `windowMs`, if given). */
  isNew(key: string, what = '', windowMs?: number): boolean {
    const last = this.said.get(key);
    const t = this.now();
    if (last && last.what === what && (windowMs === undefined || t - last.at < windowMs)) return false;
    // Deleted and set again: the map's order stays the order of saying, oldest first.
    this.said.delete(key);
    this.said.set(key, { what, at: t });
    if (this.said.size > this.max) this.said.delete(this.said.keys().next().value!);
    return true;
  }

  /** Ends what was said of `key` (or of every key `which` picks): it may be said again. */
  forget(which: string | ((key: string) => boolean)) {
    if (typeof which === 'string') this.said.delete(which);
    else for (const k of [...this.said.keys()]) if (which(k)) this.said.delete(k);
  }

  get size(): number {
    return this.said.size;
  }
}

/** At most `limit` writes in flight; beyond `maxWaiting` queued, new ones are dropped. */
export class EventGate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  /** Events written, failed to write, and dropped because too many were waiting. */
  written = 0;
  failed = 0;
  dropped = 0;

  constructor(
    readonly limit = 4,
    readonly maxWaiting = 1000,
  ) {}

  /** Runs `fn` when a slot is free; false (and `fn` never runs) if the queue is full. */
  async run(fn: () => Promise<void>): Promise<boolean> {
    if (this.active >= this.limit) {
      if (this.waiting.length >= this.maxWaiting) {
        this.dropped++;
        return false;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.active++;
    try {
      await fn();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next writer; active only drops when none waits.
      if (next) next();
      else if (--this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
    return true;
  }

  /** True once nothing is in flight or waiting; false if that took longer than `timeoutMs`. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.splice(this.idleWaiters.indexOf(done), 1);
        resolve(false);
      }, timeoutMs);
      this.idleWaiters.push(done);
    });
  }
}

/** Dry run writes only Events that say what sickbay would have done. */
export const isWouldEvent = (reason: string) => /^Would[A-Z]/.test(reason);

export class EventRecorder {
  /** In dry run, Events other than Would* are logged, not written (dry run changes nothing but Would* Events). */
  dryRun = false;
  /** What this component has said, for `once`. */
  readonly notices = new Notices();

  private readonly component: string;
  private readonly host: string;
  private readonly log: Logger;
  private readonly gate: EventGate;

  /** `host`: the reporting instance (the pod's name); `gate`: the process's one Event gate. */
  constructor(
    private readonly core: CoreV1Api,
    o: { gate: EventGate; host?: string; log: Logger; component?: string },
  ) {
    this.gate = o.gate;
    this.host = o.host ?? '';
    this.log = o.log;
    this.component = o.component ?? 'sickbay';
  }

  /**
   * Resolves once the Event is written (or given up on); never rejects. Controllers in a
   * hurry do not await it.
   */
  async record(ref: ObjectRef, type: 'Normal' | 'Warning', reason: EventReason, message: string): Promise<void> {
    if (this.dryRun && !isWouldEvent(reason)) {
      this.log.info(`dry run: not recording Event ${reason}`, { object: `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`, message });
      return;
    }
    const now = new Date(); // when it happened, not when its turn came
    const written = await this.gate.run(() => this.write(ref, type, reason, message, now));
    if (!written && this.gate.dropped % 100 === 1) {
      this.log.warn('too many Events waiting to be written; dropping', { reason, object: `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`, droppedSoFar: this.gate.dropped });
    }
  }

  /**
   * Records the Event only if `what` has not been said of `key` (within `windowMs`, if
   * given; see Notices); resolves true if it was said now.
   */
  async once(key: string, what: string, ref: ObjectRef, type: 'Normal' | 'Warning', reason: EventReason, message: string, windowMs?: number): Promise<boolean> {
    if (!this.notices.isNew(key, what, windowMs)) return false;
    await this.record(ref, type, reason, message);
    return true;
  }

  private async write(ref: ObjectRef, type: 'Normal' | 'Warning', reason: EventReason, message: string, now: Date): Promise<void> {
    const namespace = ref.namespace || 'default';
    try {
      await callWithin(10_000, 'event create', (o) => this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${ref.name}.${randomBytes(8).toString('hex')}`, namespace },
          involvedObject: { apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name, namespace: ref.namespace, uid: ref.uid },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: this.component, host: this.host || undefined },
          reportingComponent: this.component,
          reportingInstance: this.host || this.component,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      }, o));
      this.gate.written++;
    } catch (err) {
      this.gate.failed++;
      this.log.warn('could not record an Event', { reason, object: `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`, error: errorText(err) });
    }
  }
}
