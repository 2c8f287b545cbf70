// What a person asks first when pods on the real node do not become Ready: each pod's
// phase and containers (restarts, how the last one ended), the namespace's latest Events,
// and the log tail of each container that has run. Written into the error of a wait that
// gave up, so a failure in CI explains itself after the cluster is gone.
import { readFileSync } from 'node:fs';
import type { CoreV1Api, V1ContainerState, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';

const clock = (d?: Date) => (d ? new Date(d).toISOString().slice(11, 23) : '?');

const state = (s?: V1ContainerState) =>
  s?.running
    ? `running since ${clock(s.running.startedAt)}`
    : s?.waiting
      ? `waiting (${s.waiting.reason ?? ''}${s.waiting.message ? `: ${s.waiting.message}` : ''})`
      : s?.terminated
        ? `terminated (${s.terminated.reason ?? ''}, exit ${s.terminated.exitCode}${s.terminated.signal ? `, signal ${s.terminated.signal}` : ''}, ${clock(s.terminated.startedAt)} → ${clock(s.terminated.finishedAt)}${s.terminated.message ? `: ${s.terminated.message.trim()}` : ''})`
        : 'no state';

function containerLine(c: V1ContainerStatus): string {
  const last = c.lastState?.terminated ? `; last: ${state(c.lastState)}` : '';
  return `    ${c.name}: ready=${c.ready}, restarts ${c.restartCount}, ${state(c.state)}${last}`;
}

async function logTail(core: CoreV1Api, pod: V1Pod, container: string, previous: boolean): Promise<string> {
  try {
    const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, container, previous, tailLines: 15 });
    return String(log).trimEnd() || '(empty)';
  } catch (err) {
    return `(no log: ${(err as { body?: string }).body ?? (err as Error).message})`.slice(0, 300);
  }
}

/**
 * A plain-text report of the pods matching `labelSelector` in `namespace`, with the
 * kubelet's log lines that name them when `kubeletLog` is given; never throws.
 */
export async function podReport(core: CoreV1Api, namespace: string, labelSelector = '', kubeletLog?: string): Promise<string> {
  const out: string[] = [];
  try {
    const pods = (await core.listNamespacedPod({ namespace, labelSelector })).items;
    if (kubeletLog) out.push(...kubeletLines(kubeletLog, pods.map((p) => p.metadata!.name!)));
    if (pods.length === 0) out.push(`no pods in ${namespace}${labelSelector ? ` matching ${labelSelector}` : ''}`);
    for (const p of pods) {
      const conditions = (p.status?.conditions ?? []).map((c) => `${c.type}=${c.status}${c.reason ? `(${c.reason})` : ''}`).join(' ');
      out.push(`pod ${namespace}/${p.metadata?.name} on ${p.spec?.nodeName ?? '(unscheduled)'}: ${p.status?.phase} ${conditions}`);
      const statuses = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])];
      for (const c of statuses) {
        out.push(containerLine(c));
        const ran = c.restartCount > 0 || c.state?.running || c.state?.terminated;
        if (!ran) continue;
        const previous = c.restartCount > 0 && !c.state?.terminated;
        const tail = await logTail(core, p, c.name, previous);
        out.push(`    ${previous ? 'log of the previous run' : 'log'} of ${c.name}:`, ...tail.split('\n').map((l) => `      ${l}`));
      }
    }
    // With a selector, the Events of those pods; without, the whole namespace's.
    const names = new Set(pods.map((p) => p.metadata!.name!));
    const events = (await core.listNamespacedEvent({ namespace })).items
      .filter((e) => !labelSelector || names.has(e.involvedObject.name!))
      .sort((a, b) => time(a) - time(b))
      .slice(-15)
      .map((e) => `  ${clock(new Date(time(e)))} ${e.type} ${e.reason} ${e.involvedObject.kind}/${e.involvedObject.name}${(e.count ?? 1) > 1 ? ` (x${e.count})` : ''}: ${e.message ?? ''}`);
    out.push(`latest Events${labelSelector ? ' of these pods' : ''} in ${namespace}:`, ...(events.length ? events : ['  (none)']));
  } catch (err) {
    out.push(`(the report stopped: ${(err as Error).message})`);
  }
  return out.join('\n');
}

function time(e: { lastTimestamp?: Date; eventTime?: Date; metadata?: { creationTimestamp?: Date } }): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp;
  return t ? new Date(t).getTime() : 0;
}

function kubeletLines(file: string, pods: string[]): string[] {
  if (pods.length === 0) return [];
  let lines: string[];
  try {
    lines = readFileSync(file, 'utf8').split('\n');
  } catch (err) {
    return [`(kubelet log unreadable: ${(err as Error).message})`];
  }
  const named = lines.filter((l) => pods.some((p) => l.includes(p))).slice(-20);
  return [`the kubelet's last lines about these pods (${file}):`, ...(named.length ? named.map((l) => `  ${l.slice(0, 400)}`) : ['  (none)'])];
}
