// The registry step: a pod out of service is removed from the ZooKeeper registries that
// list its address, and put back if the quarantine ends while the pod lives.
// Each step runs on its own, records what it did on the pod (an annotation a person
// reads), in an Event and in a metric, and never undoes or blocks the quarantine:
// failures retry or are reported, that is all.
import type { CoreV1Api } from '@kubernetes/client-node';
import type { EventRecorder } from '../kube/events.js';
import { keyOf } from '../kube/informer.js';
import { errorText } from '../kube/api.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { ANN_REGISTRY } from '../core/names.js';
import { type AnyPod, podRef } from '../kube/pods.js';
import { annotate, type PostQuarantineStep, type StepDeps, stepWriters } from '../kube/steps.js';
import { sleep } from '../util/wait.js';
import { type RegistryEntry, type RegistryTarget, type ServiceRegistry, targetKey } from './zookeeper-registry.js';

export class RegistryStep implements PostQuarantineStep {
  readonly name = 'registry';
  private readonly core: CoreV1Api;
  private readonly events: EventRecorder;
  private readonly active = new Map<string, RegistryTarget>(); // pod key -> whose registrations

  private readonly log: Logger;
  private readonly metrics: Metrics;

  constructor(
    deps: StepDeps,
    private readonly registries: ServiceRegistry[],
  ) {
    ({ log: this.log, metrics: this.metrics } = deps);
    ({ core: this.core, events: this.events } = stepWriters(deps));
  }

  async run(pod: AnyPod, signal: AbortSignal): Promise<void> {
    const address = pod.status?.podIP;
    const key = keyOf(pod);
    if (this.registries.length === 0) return;
    if (!address) {
      await annotate(this.core, pod, ANN_REGISTRY, { status: 'skipped', reason: 'the pod has no IP' });
      return;
    }
    // A hostNetwork pod's address is its node's: only the ports it declares are its own.
    const ports = pod.spec?.hostNetwork ? declaredPorts(pod) : undefined;
    if (ports?.length === 0) {
      const reason = "the pod uses its node's network and declares no ports, so its registrations cannot be told from other processes' on the node";
      await annotate(this.core, pod, ANN_REGISTRY, { status: 'skipped', reason, address });
      await this.events.record(podRef(pod), 'Warning', 'DeregistrationSkipped', `${reason}; declare its service ports (containerPort) to have them deregistered`);
      return;
    }
    const target: RegistryTarget = { address, ports };
    this.active.set(key, target);
    const removed: RegistryEntry[] = [];
    const record = async (status: string, extra: Record<string, unknown> = {}) =>
      annotate(this.core, pod, ANN_REGISTRY, { status, address, ...(ports ? { ports } : {}), removed: removed.map((e) => `${e.registry}:${e.path}`), at: new Date().toISOString(), ...extra }).catch((err) =>
        this.log.warn('could not record the registry annotation', { pod: key, error: errorText(err) }),
      );
    let backoff = 1000;
    let failures = 0;
    const onRemoved = (entries: RegistryEntry[]) => {
      removed.push(...entries);
      this.metrics.registryRemovals.inc({ kind: 'reregistration' }, entries.length);
      this.log.info('removed a re-registration of a quarantined pod', { pod: key, entries: entries.map((e) => e.path) });
      // Also after a lost ZooKeeper session, whose new session removes what came back
      // (possibly while this step still retries): the record keeps the attempts so far.
      void record('watching', failures ? { attempts: failures + 1 } : {});
      void this.events.record(podRef(pod), 'Normal', 'Reregistered', `removed again from the registry: ${entries.map((e) => e.path).join(', ')}`);
    };
    while (!signal.aborted && this.active.get(key) === target) {
      try {
        for (const r of this.registries) removed.push(...(await r.deregister(target, onRemoved)));
        this.metrics.registryRemovals.inc({ kind: 'initial' }, removed.length);
        await record('watching', failures ? { attempts: failures + 1 } : {});
        await this.events.record(
          podRef(pod),
          'Normal',
          'Deregistered',
          removed.length ? `removed from the service registry: ${removed.map((e) => e.path).join(', ')}` : `no registry entry for ${address}; watching for registrations`,
        );
        this.log.info('deregistered', { pod: key, removed: removed.map((e) => e.path) });
        return;
      } catch (err) {
        failures++;
        this.metrics.registryErrors.inc();
        this.log.warn('registry deregistration failed; retrying (the quarantine stands)', { pod: key, attempt: failures, retryInMs: backoff, error: errorText(err) });
        await record('retrying', { attempts: failures, error: errorText(err) });
        if (failures === 1) await this.events.record(podRef(pod), 'Warning', 'DeregistrationFailed', `cannot reach the service registry, retrying: ${errorText(err)}`);
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }

  forget(pod: AnyPod) {
    const target = this.active.get(keyOf(pod));
    if (!target) return;
    this.active.delete(keyOf(pod));
    if (![...this.active.values()].some((t) => targetKey(t) === targetKey(target))) for (const r of this.registries) r.stop(target);
  }
}

/** The ports a pod's containers declare (containerPort, and hostPort where it differs). */
function declaredPorts(pod: AnyPod): number[] {
  const ports = new Set<number>();
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      ports.add(p.containerPort);
      if (p.hostPort) ports.add(p.hostPort);
    }
  }
  return [...ports];
}
