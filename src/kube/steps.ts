// What is done to a pod once it is out of service (deregistration, diagnostics): the
// contract between the controllers that take pods out of service (quarantine, node
// isolation) and the steps, which live with their own concerns (registry/, diagnostics/).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { AnyPod } from './pods.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { EventRecorder, type EventSink } from './events.js';
import { callWithin, codeOf, mergePatch } from './api.js';

/** A step run after a quarantine (registry deregistration, diagnostics). It may fail; the quarantine stands. */
export interface PostQuarantineStep {
  name: string;
  /** The pod as the API returned it after the quarantine, or from the cache (a new leader, node isolation). */
  run(pod: AnyPod, signal: AbortSignal): Promise<void>;
  /** Called when a quarantined pod is gone (released, expired, deleted). */
  forget?(pod: AnyPod): void;
}

/**
 * Steps run one after another on each pod (a checkpoint before the dumps, which change
 * what the process holds); one that fails does not stop the next, and the first failure
 * is reported when all have run.
 */
export function inOrder(steps: PostQuarantineStep[]): PostQuarantineStep {
  return {
    name: steps.map((s) => s.name).join(', then '),
    async run(pod, signal) {
      let failure: unknown;
      for (const step of steps) {
        if (signal.aborted) break;
        try {
          await step.run(pod, signal);
        } catch (err) {
          failure ??= new Error(`${step.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
      }
      if (failure) throw failure;
    },
    forget(pod) {
      for (const step of steps) step.forget?.(pod);
    },
  };
}

/** Records what a step did on the pod, as JSON in one annotation; false when the pod is gone. */
export async function annotate(core: CoreV1Api, pod: AnyPod, key: string, value: unknown): Promise<boolean> {
  try {
    await callWithin(10_000, 'annotation patch', (o) => core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { metadata: { annotations: { [key]: JSON.stringify(value) } } } }, o), mergePatch);
    return true;
  } catch (err) {
    if (codeOf(err) === 404) return false;
    throw err;
  }
}

/** What a step is built with. */
export interface StepDeps {
  kc: KubeConfig;
  log: Logger;
  metrics: Metrics;
  /** Where its Events go (the process's one gate, the reporting instance). */
  eventSink: EventSink;
}

/** The API client and the Event recorder a step writes with. */
export function stepWriters(d: StepDeps): { core: CoreV1Api; events: EventRecorder } {
  const core = d.kc.makeApiClient(CoreV1Api);
  return { core, events: new EventRecorder(core, { ...d.eventSink, log: d.log }) };
}
