// The steps after a quarantine. Each runs on its own, records what it did on the pod
// (an annotation a person reads), in an Event and in a metric, and never undoes or
// blocks the quarantine: failures retry or are reported, that is all.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { EventRecorder } from '../kube/events.js';
import { execInPod } from '../kube/exec.js';
import { keyOf } from '../kube/informer.js';
import { codeOf, errorText, mergePatch } from '../kube/api.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { ANN_DIAGNOSTICS, ANN_REGISTRY, PREFIX, SHIM_MOUNT } from '../names.js';
import { type RegistryEntry, type RegistryTarget, type ServiceRegistry, targetKey } from '../registry/zookeeper-registry.js';
import { sleep, withDeadline } from '../util/wait.js';
import { podRef, type PostQuarantineStep } from './pod-isolation-controller.js';


/** Pod annotations (usually set in the Deployment's pod template) that tune diagnostics. */
export const ANN_HEAP_DUMP = `${PREFIX}/heap-dump`;
export const ANN_DIAGNOSTICS_SCRIPT = `${PREFIX}/diagnostics-script`;
export const ANN_DIAGNOSTICS_CONTAINER = `${PREFIX}/diagnostics-container`;

async function annotate(core: CoreV1Api, pod: V1Pod, key: string, value: unknown): Promise<boolean> {
  try {
    await withDeadline(
      core.patchNamespacedPod(
        { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { metadata: { annotations: { [key]: JSON.stringify(value) } } } },
        mergePatch,
      ),
      10_000,
      'annotation patch',
    );
    return true;
  } catch (err) {
    if (codeOf(err) === 404) return false;
    throw err;
  }
}

export class RegistryStep implements PostQuarantineStep {
  readonly name = 'registry';
  private readonly core: CoreV1Api;
  private readonly events: EventRecorder;
  private readonly active = new Map<string, RegistryTarget>(); // pod key -> whose registrations

  constructor(
    kc: KubeConfig,
    private readonly registries: ServiceRegistry[],
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(this.core, 'sickbay', log);
  }

  async run(pod: V1Pod, signal: AbortSignal): Promise<void> {
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

  forget(pod: V1Pod) {
    const target = this.active.get(keyOf(pod));
    if (!target) return;
    this.active.delete(keyOf(pod));
    if (![...this.active.values()].some((t) => targetKey(t) === targetKey(target))) for (const r of this.registries) r.stop(target);
  }
}

/** The ports a pod's containers declare (containerPort, and hostPort where it differs). */
function declaredPorts(pod: V1Pod): number[] {
  const ports = new Set<number>();
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      ports.add(p.containerPort);
      if (p.hostPort) ports.add(p.hostPort);
    }
  }
  return [...ports];
}

export interface DiagnosticsOptions {
  timeoutMs: number;
}

export class DiagnosticsStep implements PostQuarantineStep {
  readonly name = 'diagnostics';
  private readonly core: CoreV1Api;
  private readonly events: EventRecorder;

  constructor(
    private readonly kc: KubeConfig,
    private readonly o: DiagnosticsOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(this.core, 'sickbay', log);
  }

  async run(pod: V1Pod, signal: AbortSignal): Promise<void> {
    const ann = pod.metadata?.annotations ?? {};
    if (ann[ANN_DIAGNOSTICS] !== undefined || signal.aborted) return; // already captured (maybe by a previous leader)
    const container = ann[ANN_DIAGNOSTICS_CONTAINER] ?? pod.spec?.containers?.[0]?.name;
    if (!container) return;
    const heap = ann[ANN_HEAP_DUMP] === 'true';
    const custom = ann[ANN_DIAGNOSTICS_SCRIPT];
    // SICKBAY_DIR, when the container sets it, moves the shim (tests run it outside a real container).
    const command = custom
      ? ['sh', '-c', 'exec "$0" "$@"', custom, ...(heap ? ['--heap'] : [])]
      : ['sh', '-c', `exec sh "\${SICKBAY_DIR:-${SHIM_MOUNT}}/bin/diagnose" "$@"`, 'diagnose', ...(heap ? ['--heap'] : [])];
    const started = Date.now();
    const res = await execInPod(this.kc, { namespace: pod.metadata!.namespace!, pod: pod.metadata!.name!, container }, command, this.o.timeoutMs);
    let summary: Record<string, unknown> = {};
    const lastLine = res.stdout.trim().split('\n').pop() ?? '';
    try {
      const parsed: unknown = JSON.parse(lastLine);
      if (parsed && typeof parsed === 'object') summary = parsed as Record<string, unknown>;
    } catch {
      // a custom script may print anything
    }
    const result = res.timedOut ? 'timeout' : res.exitCode === 0 ? 'ok' : res.exitCode === 3 ? 'skipped' : 'failed';
    const record = {
      ...summary,
      status: result === 'ok' ? (summary.status ?? 'ok') : result,
      container,
      script: custom ?? `${SHIM_MOUNT}/bin/diagnose`,
      ...(res.exitCode !== undefined ? { exitCode: res.exitCode } : {}),
      ...(res.error ? { error: res.error } : {}),
      ...(result === 'failed' && res.stderr ? { stderr: res.stderr.slice(-500) } : {}),
      durationMs: Date.now() - started,
      at: new Date().toISOString(),
    };
    this.metrics.diagnostics.inc({ result });
    this.log.info('diagnostics finished', { pod: keyOf(pod), result, dir: summary.dir });
    await annotate(this.core, pod, ANN_DIAGNOSTICS, record).catch((err) => this.log.warn('could not record the diagnostics annotation', { pod: keyOf(pod), error: errorText(err) }));
    const message =
      result === 'ok'
        ? `diagnostics captured in ${String(summary.dir ?? '?')} (threads: ${String(summary.threadDump ?? '?')}, histogram: ${String(summary.histogram ?? '?')}, heap: ${String(summary.heapDump ?? '?')})`
        : result === 'skipped'
          ? `no JVM in container ${container}; nothing to capture`
          : result === 'timeout'
            ? `the diagnostics script did not finish within ${this.o.timeoutMs} ms and was cut off`
            : `the diagnostics script failed: ${res.error ?? `exit ${res.exitCode}`}`;
    await this.events.record(podRef(pod), result === 'ok' || result === 'skipped' ? 'Normal' : 'Warning', result === 'ok' ? 'DiagnosticsCaptured' : result === 'skipped' ? 'DiagnosticsSkipped' : 'DiagnosticsFailed', message);
  }
}
