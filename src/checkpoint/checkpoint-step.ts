// The checkpoint step: a forensic checkpoint (CRIU, through the kubelet's ContainerCheckpoint
// API) of each supervised container of a quarantined pod whose pod or namespace asks for it
// (`sickbay.io/checkpoint: "true"`). `sickbay serve` has no permission to checkpoint: it
// asks the node's agent, by listing the containers in the node's NodeHealth
// (spec.checkpoints), waits for the agent's answer in its status, and records it on the
// pod (`sickbay.io/checkpoint-result`), in an Event and in a metric. It runs before the
// dump scripts, which change what the process holds. A checkpoint that fails or never
// comes is reported; the quarantine stands and the dumps run anyway.
import type { CoreV1Api } from '@kubernetes/client-node';
import type { AnyPod } from '../kube/pods.js';
import { podRef } from '../kube/pods.js';
import type { EventRecorder } from '../kube/events.js';
import { keyOf } from '../kube/informer.js';
import { codeOf, errorText } from '../kube/errors.js';
import { restCall } from '../kube/rest.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { ANN_CHECKPOINT, ANN_CHECKPOINT_RESULT, SHIM_SUPERVISOR } from '../core/names.js';
import { type CheckpointRecord, type CheckpointRequest, type CheckpointResult, checkpointKey, MAX_CHECKPOINTS, NODEHEALTH_PATH, type NodeHealth } from '../core/nodehealth.js';
import { annotate, type PostQuarantineStep, type StepDeps, stepWriters } from '../kube/steps.js';
import { sleep } from '../util/wait.js';

export interface CheckpointStepOptions {
  /** How long to wait for the agent's answer. */
  timeoutMs: number;
  /** A namespace's annotations (from the cache): `sickbay.io/checkpoint` may be set there. */
  namespaceAnnotations(namespace: string): Record<string, string> | undefined;
  /** How often the NodeHealth is read while waiting (500 ms). */
  pollMs?: number;
}

/** The pod's own `sickbay.io/checkpoint` wins over its namespace's; absent on both: no checkpoint. */
export function checkpointWanted(pod: AnyPod, namespaceAnnotations: Record<string, string> | undefined): boolean {
  const own = pod.metadata?.annotations?.[ANN_CHECKPOINT];
  const value = own ?? namespaceAnnotations?.[ANN_CHECKPOINT];
  return value === 'true';
}

/** The containers the supervisor runs: their process is the scene (an unsupervised one was restarted by the kubelet). */
export function supervisedContainers(pod: AnyPod): string[] {
  return (pod.spec?.containers ?? []).filter((c) => c.command?.[0] === SHIM_SUPERVISOR).map((c) => c.name);
}

/** The requests of a NodeHealth with this pod's added, and without those of pods that are gone. */
export function withRequests(current: CheckpointRequest[], add: CheckpointRequest[], gone: (r: CheckpointRequest) => boolean): CheckpointRequest[] {
  const keep = current.filter((r) => !gone(r));
  const have = new Set(keep.map(checkpointKey));
  return [...keep, ...add.filter((r) => !have.has(checkpointKey(r)))].slice(-MAX_CHECKPOINTS);
}

type Outcome = 'taken' | 'failed' | 'timeout' | 'no-agent';

export class CheckpointStep implements PostQuarantineStep {
  readonly name = 'checkpoint';
  private readonly core: CoreV1Api;
  private readonly events: EventRecorder;
  private readonly kc: StepDeps['kc'];
  private readonly log: Logger;
  private readonly metrics: Metrics;

  constructor(
    deps: StepDeps,
    private readonly o: CheckpointStepOptions,
  ) {
    ({ kc: this.kc, log: this.log, metrics: this.metrics } = deps);
    ({ core: this.core, events: this.events } = stepWriters(deps));
  }

  async run(pod: AnyPod, signal: AbortSignal): Promise<void> {
    const ann = pod.metadata?.annotations ?? {};
    if (ann[ANN_CHECKPOINT_RESULT] !== undefined || signal.aborted) return; // taken already (maybe under a previous leader)
    if (!checkpointWanted(pod, this.o.namespaceAnnotations(pod.metadata!.namespace!))) return;
    const node = pod.spec?.nodeName;
    const containers = supervisedContainers(pod);
    if (!node || containers.length === 0) return;
    const started = Date.now();
    const requests: CheckpointRequest[] = containers.map((container) => ({
      namespace: pod.metadata!.namespace!,
      pod: pod.metadata!.name!,
      uid: pod.metadata!.uid!,
      container,
      requestedAt: new Date().toISOString(),
    }));
    let outcome: Outcome;
    let records: CheckpointRecord[] = [];
    let why = '';
    try {
      await this.request(node, requests, signal);
      ({ outcome, records } = await this.answers(node, requests, signal));
      if (outcome === 'timeout') why = `the agent on ${node} did not answer within ${Math.round(this.o.timeoutMs / 1000)} s`;
    } catch (err) {
      if (signal.aborted) return; // the term ended: the next leader asks again
      outcome = codeOf(err) === 404 ? 'no-agent' : 'failed';
      why = codeOf(err) === 404 ? `no sickbay agent reports node ${node} (no NodeHealth): nobody can take the checkpoint there` : `cannot ask the agent on ${node}: ${errorText(err)}`;
    }
    const byContainer = new Map(records.map((r) => [r.container, r]));
    const result: CheckpointResult = {
      status: outcome === 'taken' ? 'ok' : outcome,
      node,
      containers: containers.map((name) => {
        const r = byContainer.get(name);
        return r
          ? { name, status: r.status, ...(r.archive ? { archive: r.archive } : {}), ...(r.bytes !== undefined ? { bytes: r.bytes } : {}), ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}), ...(r.message ? { message: r.message } : {}) }
          : { name, status: 'missing' };
      }),
      ...(why ? { message: why } : {}),
      waitedMs: Date.now() - started,
      at: new Date().toISOString(),
    };
    this.metrics.checkpoints.inc({ result: outcome });
    for (const r of records) if (r.status === 'ok' && r.durationMs !== undefined) this.metrics.checkpointSeconds.observe(r.durationMs / 1000);
    this.log.info('checkpoint step finished', { pod: keyOf(pod), node, result: outcome });
    await annotate(this.core, pod, ANN_CHECKPOINT_RESULT, result).catch((err) => this.log.warn('could not record the checkpoint annotation', { pod: keyOf(pod), error: errorText(err) }));
    const message =
      outcome === 'taken'
        ? `checkpoint of ${records.map((r) => `${r.container} (${r.bytes !== undefined ? `${(r.bytes / 2 ** 20).toFixed(1)} MiB, ` : ''}${r.durationMs ?? '?'} ms)`).join(', ')} kept on node ${node}: ${records.map((r) => r.archive).join(', ')}`
        : outcome === 'failed' && !why
          ? `checkpoint failed on node ${node}: ${records
              .filter((r) => r.status !== 'ok')
              .map((r) => `${r.container}: ${r.message ?? 'failed'}`)
              .join('; ')}`
          : `no checkpoint: ${why}`;
    await this.events.record(podRef(pod), outcome === 'taken' ? 'Normal' : 'Warning', outcome === 'taken' ? 'CheckpointTaken' : 'CheckpointFailed', message);
  }

  /** The scene is gone: its requests leave the node's NodeHealth, and the agent removes the archives. */
  forget(pod: AnyPod): void {
    const node = pod.spec?.nodeName;
    const uid = pod.metadata?.uid;
    if (!node || !uid) return;
    void this.update(node, (current) => current.filter((r) => r.uid !== uid), AbortSignal.timeout(30_000)).catch((err) => {
      if (codeOf(err) !== 404) this.log.warn('could not withdraw the checkpoint requests of a pod that is gone; the next request on the node does', { pod: keyOf(pod), node, error: errorText(err) });
    });
  }

  /** Adds the requests to the node's NodeHealth (and drops those of pods that are gone). */
  private async request(node: string, requests: CheckpointRequest[], signal: AbortSignal) {
    const alive = new Map<string, boolean>();
    const gone = async (r: CheckpointRequest) => {
      const key = `${r.namespace}/${r.pod}/${r.uid}`;
      if (!alive.has(key)) {
        const pod = await this.core.readNamespacedPod({ name: r.pod, namespace: r.namespace }).catch((err) => (codeOf(err) === 404 ? undefined : 'unknown'));
        alive.set(key, pod === 'unknown' || (pod !== undefined && pod.metadata?.uid === r.uid));
      }
      return !alive.get(key)!;
    };
    await this.update(
      node,
      async (current) => {
        const goneOnes = new Set<CheckpointRequest>();
        for (const r of current) if (r.uid !== requests[0]!.uid && (await gone(r))) goneOnes.add(r);
        return withRequests(current, requests, (r) => goneOnes.has(r));
      },
      signal,
    );
  }

  /** A read-modify-write of spec.checkpoints, under the NodeHealth's resourceVersion (the agent's heartbeats change it). */
  private async update(node: string, change: (current: CheckpointRequest[]) => CheckpointRequest[] | Promise<CheckpointRequest[]>, signal: AbortSignal) {
    const path = `${NODEHEALTH_PATH}/${encodeURIComponent(node)}`;
    for (let attempt = 0; ; attempt++) {
      const health = await restCall<NodeHealth>(this.kc, { method: 'GET', path, timeoutMs: 10_000, signal });
      const current = health.spec?.checkpoints ?? [];
      const next = await change(current);
      if (JSON.stringify(next) === JSON.stringify(current)) return;
      try {
        await restCall(this.kc, {
          method: 'PATCH',
          path,
          contentType: 'application/merge-patch+json',
          body: { metadata: { resourceVersion: health.metadata?.resourceVersion }, spec: { checkpoints: next } },
          timeoutMs: 10_000,
          signal,
        });
        return;
      } catch (err) {
        if (codeOf(err) !== 409 || attempt >= 10) throw err;
      }
    }
  }

  /** Waits for the agent's records of every request; `timeout` when they do not all come in time. */
  private async answers(node: string, requests: CheckpointRequest[], signal: AbortSignal): Promise<{ outcome: Outcome; records: CheckpointRecord[] }> {
    const path = `${NODEHEALTH_PATH}/${encodeURIComponent(node)}`;
    const want = new Set(requests.map(checkpointKey));
    const deadline = Date.now() + this.o.timeoutMs;
    let records: CheckpointRecord[] = [];
    for (;;) {
      const health = await restCall<NodeHealth>(this.kc, { method: 'GET', path, timeoutMs: 10_000, signal }).catch((err) => {
        if (signal.aborted) throw err;
        return undefined; // a failed read is retried until the deadline
      });
      if (health) records = (health.status?.checkpoints ?? []).filter((r) => want.has(checkpointKey(r)));
      if (records.length === want.size) return { outcome: records.every((r) => r.status === 'ok') ? 'taken' : 'failed', records };
      if (Date.now() >= deadline) return { outcome: 'timeout', records };
      await sleep(this.o.pollMs ?? 500, signal);
      if (signal.aborted) throw new Error('the term ended');
    }
  }
}
