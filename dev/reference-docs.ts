// The reference pages of docs/reference/, generated from the code that defines what they
// list: `npm run docs` writes them, tests/unit/docs.test.ts fails when one differs.
import { configTable } from '../src/core/config-docs.js';
import { PUBLIC_NAMES } from '../src/core/contract.js';
import { EVENT_REASONS } from '../src/core/event-reasons.js';
import { AGENT_METRICS } from '../src/core/agent-metrics.js';
import { Metrics } from '../src/core/metrics.js';
import { COMMANDS, EXIT_DOCS, helpText } from '../src/cli/commands.js';

const GENERATED = (source: string) => `<!-- Generated from ${source} by \`npm run docs\`; do not edit. -->\n`;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function configuration(): string {
  return `${GENERATED('src/core/config-docs.ts')}
# Configuration

\`sickbay serve\` and \`sickbay agent\` read environment variables only (\`src/core/config.ts\` is
the one place); a bad value stops them at start with a message naming the offending
variable. The chart sets them from its values (\`chart/values.yaml\`); \`extraEnv\` sets any other.

${configTable()}
`;
}

function labelsAndAnnotations(): string {
  const rows = PUBLIC_NAMES.map((n) => `| ${n.object} | \`${n.key}\` | ${n.kind} | ${n.setBy} | ${cell(n.values)} | ${cell(n.meaning)} |`);
  return `${GENERATED('src/core/contract.ts')}
# Labels, annotations, taints and resources

The public contract on Kubernetes objects: users, monitors and tests depend on these names.
"set by sickbay" means only sickbay writes it: on a quarantined pod, the validating webhook
and the chart's ValidatingAdmissionPolicy refuse anyone else's change to sickbay's marks.

| object | key | kind | set by | values | meaning |
|---|---|---|---|---|---|
${rows.join('\n')}

The shim lives in an \`emptyDir\` mounted at \`/sickbay\` in every injected container:
\`/sickbay/bin/\` (supervisor, probe, dump scripts), \`/sickbay/run/\` (the supervisor's
state), \`/sickbay/diag/<time>/\` (dumps, kept with the pod), \`/sickbay/jfr/\` (the flight
recorder's repository), \`/sickbay/pod/\` (the pod's labels, from the downward API).
`;
}

function events(): string {
  const rows = Object.entries(EVENT_REASONS).map(([reason, d]) => `| \`${reason}\` | ${d.type} | ${d.on} | ${cell(d.meaning)} |`);
  return `${GENERATED('src/core/event-reasons.ts')}
# Event reasons

Every destructive or skipped action leaves a Kubernetes Event (\`source: sickbay\`), on the
object it concerns and, for a pod, often on its workload too. In dry run only the \`Would*\`
Events are written. \`kubectl get events -A --field-selector source=sickbay\` lists them; the
[runbooks](../operations.md) say what to do about the Warnings.

| reason | type | on | meaning |
|---|---|---|---|
${rows.join('\n')}
`;
}

interface MetricInfo {
  name: string;
  help: string;
  type: string;
  labelNames?: string[];
}

function metricRows(registry: { getMetricsAsArray(): unknown[] }, process: string): string[] {
  return (registry.getMetricsAsArray() as MetricInfo[])
    .map((m) => ({ name: m.name, help: m.help, type: String((m as { type?: unknown }).type ?? ''), labels: m.labelNames ?? [] }))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((m) => `| \`${m.name}\` | ${m.type} | ${m.labels.map((l) => `\`${l}\``).join(', ')} | ${process} | ${cell(m.help)} |`);
}

function metrics(): string {
  return `${GENERATED('src/core/metrics.ts and src/core/agent-metrics.ts')}
# Metrics

\`GET /metrics\` on \`sickbay serve\` (every replica; the controllers' on the leader) and on each
agent. Besides these, \`sickbay serve\` exports Node.js's default process metrics
(\`process_*\`, \`nodejs_*\`). The chart's alerts and dashboard use only names listed here (a test
checks it).

| metric | type | labels | process | meaning |
|---|---|---|---|---|
${[...metricRows(new Metrics().registry, 'serve'), ...metricRows({ getMetricsAsArray: () => Object.values(AGENT_METRICS) }, 'agent')].join('\n')}
`;
}

function cli(): string {
  const sections = COMMANDS.map((c) => `## \`sickbay ${c.name}\`\n\n${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.\n\n\`\`\`text\n${helpText(c, 'sickbay').trimEnd()}\n\`\`\``);
  return `${GENERATED('src/cli/commands.ts')}
# Command line

\`sickbay\` (also \`kubectl sickbay\`: the package installs \`kubectl-sickbay\`). Every command
that reads a cluster takes \`--kubeconfig\` and \`--context\` (default: \`$KUBECONFIG\`,
\`~/.kube/config\`, in a pod its ServiceAccount); \`-n/--namespace\` is the target namespace, as
in kubectl; \`--help\` after any command prints its help. Errors are one line on stderr.

## Exit codes

| code | meaning |
|---|---|
${EXIT_DOCS.map((e) => `| ${e.code} | ${e.meaning} |`).join('\n')}

${sections.join('\n\n')}
`;
}

/** docs/ path → its generated content. */
export function referenceDocs(): Record<string, string> {
  return {
    'reference/configuration.md': configuration(),
    'reference/labels-annotations.md': labelsAndAnnotations(),
    'reference/events.md': events(),
    'reference/metrics.md': metrics(),
    'reference/cli.md': cli(),
  };
}
