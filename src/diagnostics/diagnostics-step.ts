// The diagnostics step: the shim's dump script (or the pod's own) run in the quarantined
// container, its result recorded on the pod.
// Each step runs on its own, records what it did on the pod (an annotation a person
// reads), in an Event and in a metric, and never undoes or blocks the quarantine:
// failures retry or are reported, that is all.
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { AnyPod } from '../kube/pods.js';
import type { EventRecorder } from '../kube/events.js';
import { execInPod } from '../kube/exec.js';
import { keyOf } from '../kube/informer.js';
import { errorText } from '../kube/api.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { ANN_DIAGNOSTICS, PREFIX, SHIM_MOUNT } from '../core/names.js';
import { podRef } from '../kube/pods.js';
import { annotate, type PostQuarantineStep, type StepDeps, stepWriters } from '../kube/steps.js';
import { customDiagnosticsCommand, diagnoseCommand } from '../core/shim-commands.js';

/** Pod annotations (usually set in the Deployment's pod template) that tune diagnostics. */
export const ANN_HEAP_DUMP = `${PREFIX}/heap-dump`;
export const ANN_DIAGNOSTICS_SCRIPT = `${PREFIX}/diagnostics-script`;
export const ANN_DIAGNOSTICS_CONTAINER = `${PREFIX}/diagnostics-container`;

export interface DiagnosticsOptions {
  timeoutMs: number;
}

export class DiagnosticsStep implements PostQuarantineStep {
  readonly name = 'diagnostics';
  private readonly core: CoreV1Api;
  private readonly events: EventRecorder;

  private readonly kc: KubeConfig;
  private readonly log: Logger;
  private readonly metrics: Metrics;

  constructor(
    deps: StepDeps,
    private readonly o: DiagnosticsOptions,
  ) {
    ({ kc: this.kc, log: this.log, metrics: this.metrics } = deps);
    ({ core: this.core, events: this.events } = stepWriters(deps));
  }

  async run(pod: AnyPod, signal: AbortSignal): Promise<void> {
    const ann = pod.metadata?.annotations ?? {};
    if (ann[ANN_DIAGNOSTICS] !== undefined || signal.aborted) return; // already captured (maybe by a previous leader)
    const container = ann[ANN_DIAGNOSTICS_CONTAINER] ?? pod.spec?.containers?.[0]?.name;
    if (!container) return;
    const heap = ann[ANN_HEAP_DUMP] === 'true';
    const custom = ann[ANN_DIAGNOSTICS_SCRIPT];
    const command = custom ? customDiagnosticsCommand(custom, heap) : diagnoseCommand(heap);
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
        ? `diagnostics captured in ${String(summary.dir ?? '?')} (threads: ${String(summary.threadDump ?? '?')}, histogram: ${String(summary.histogram ?? '?')}, flight recording: ${String(summary.flightRecording ?? 'off')}, heap: ${String(summary.heapDump ?? '?')})`
        : result === 'skipped'
          ? `no JVM in container ${container}; nothing to capture`
          : result === 'timeout'
            ? `the diagnostics script did not finish within ${this.o.timeoutMs} ms and was cut off`
            : `the diagnostics script failed: ${res.error ?? `exit ${res.exitCode}`}`;
    await this.events.record(podRef(pod), result === 'ok' || result === 'skipped' ? 'Normal' : 'Warning', result === 'ok' ? 'DiagnosticsCaptured' : result === 'skipped' ? 'DiagnosticsSkipped' : 'DiagnosticsFailed', message);
  }
}
