// The node agent's /metrics: four families, written in Prometheus's text format by hand.
// prom-client, and the parts of Node it loads, were ~20 MB of the agent's resident memory
// on every node (bench/README.md, "The node agent"); `sickbay serve` keeps prom-client.
import { VERSION } from './version.js';

export interface MetricFamily {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  labelNames: string[];
}

/** sickbay_build_info, the same on serve (core/metrics.ts declares it from this) and the agent. */
export const BUILD_INFO: MetricFamily = { name: 'sickbay_build_info', type: 'gauge', help: 'Always 1; its labels say which sickbay and Node.js this process runs.', labelNames: ['version', 'nodejs'] };

export const AGENT_METRICS = {
  buildInfo: BUILD_INFO,
  heartbeats: { name: 'sickbay_agent_heartbeats_total', type: 'counter', help: 'Heartbeats written, by result.', labelNames: ['result'] },
  checkFailing: { name: 'sickbay_agent_check_failing', type: 'gauge', help: '1 while a check is failing.', labelNames: ['check'] },
  checkpoints: { name: 'sickbay_agent_checkpoints_total', type: 'counter', help: 'Checkpoints asked of this agent, by result: taken, failed, or removed (the archive of a scene that is gone).', labelNames: ['result'] },
} as const satisfies Record<string, MetricFamily>;

export const TEXT_FORMAT = 'text/plain; version=0.0.4; charset=utf-8';

const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeValue = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function family(f: MetricFamily, samples: Array<[Record<string, string>, number]>): string {
  const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
  for (const [labels, value] of samples) {
    const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeValue(v)}"`);
    lines.push(`${f.name}${l.length ? `{${l.join(',')}}` : ''} ${value}`);
  }
  return lines.join('\n');
}

/** The agent's exposition: its heartbeats by result and each check's state. */
export function agentMetricsText(s: { heartbeats: number; heartbeatErrors: number; checks: Array<{ name: string; ok: boolean }>; checkpoints?: { taken: number; failed: number; removed: number } }): string {
  const cp = s.checkpoints ?? { taken: 0, failed: 0, removed: 0 };
  return `${[
    family(AGENT_METRICS.buildInfo, [[{ version: VERSION, nodejs: process.versions.node }, 1]]),
    family(AGENT_METRICS.heartbeats, [
      [{ result: 'ok' }, s.heartbeats],
      [{ result: 'error' }, s.heartbeatErrors],
    ]),
    family(AGENT_METRICS.checkFailing, s.checks.map((c) => [{ check: c.name }, c.ok ? 0 : 1])),
    family(AGENT_METRICS.checkpoints, [
      [{ result: 'taken' }, cp.taken],
      [{ result: 'failed' }, cp.failed],
      [{ result: 'removed' }, cp.removed],
    ]),
  ].join('\n')}\n`;
}
