#!/usr/bin/env node
// The `sickbay` command line (also `kubectl-sickbay`, so `kubectl sickbay status` works).
// Every command takes --kubeconfig, --context and --help; read-only ones take -o.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { writeCerts } from './cli/certs.js';
import { serve } from './manager/serve.js';
import { cliNamespace, ConfigError, parseDuration, readConfig } from './core/config.js';
import { codeOf } from './kube/api.js';
import { createLogger, exitOnUnhandled } from './core/log.js';
import { withDeadline } from './util/wait.js';

/** How the user called us: `kubectl sickbay` when kubectl runs us as its plugin. */
const PROG = path.basename(process.argv[1] ?? 'sickbay').startsWith('kubectl-') ? 'kubectl sickbay' : 'sickbay';

const USAGE = `sickbay: keep the crash scene, restore the service.

Usage:
  ${PROG} serve                          webhook + controllers over TLS (configured by SICKBAY_* variables)
  ${PROG} certs [options]                CA + serving certificate into certs/, webhook configurations rendered
  ${PROG} status [-o json|yaml]          quarantined pods, isolated nodes, unsupervised containers, avoid-lists
  ${PROG} release <namespace>/<pod>      end a quarantine now (archived first, when an archive is set, then deleted)
  ${PROG} inject -f <manifest> [-o json] print the manifest as the webhook would mutate it, and why a container is left alone
  ${PROG} collect <pod> [-n <ns>] [-o <file>] one pod's scene (dumps, logs, Events, pod, node, processes) in one .tar.gz
  ${PROG} archives list|get              the scene bundles sickbay archived before deleting pods
  ${PROG} agent --node-name <node>       node agent for one node (checks, NodeHealth heartbeats)
  ${PROG} node protect <node> --for <d>  keep a node from being isolated for <d> (e.g. 2h; 0 lifts it)
  ${PROG} node restore <node>            lift an isolation (taint and label removed)
  ${PROG} --version | --help | <command> --help

Global options:
  --kubeconfig <file>   kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  --context <name>      kubeconfig context to use (default: its current context)
`;

const HELP: Record<string, string> = {
  status: `Usage: ${PROG} status [-o text|json|yaml] [--namespace sickbay-system] [--kubeconfig <file>] [--context <name>]

Lists quarantined pods (age, owner, reason), isolated and protected nodes, unhealthy
NodeHealths, pods that escaped injection, containers running without the supervisor
(with the annotation that fixes each), and the nodes Deployments avoid.
`,
  inject: `Usage: ${PROG} inject -f <manifest|-> [-o yaml|json] [--shim-image <image>]

Prints the manifest (YAML or JSON, several documents, or a List) with every Pod and pod
template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) changed as the
mutating webhook would change it in an opted-in namespace, and says on stderr, per
object, which containers are supervised and why any is left alone. Reads no cluster:
the nodes a Deployment avoids are added at admission only. The shim image is
--shim-image, else $SICKBAY_SHIM_IMAGE, else the default.
`,
  collect: `Usage: ${PROG} collect <pod> [-n <namespace>] [-o <file>] [--max-size 1Gi] [--kubeconfig <file>] [--context <name>]

Writes the pod's scene to one .tar.gz (default ./<namespace>_<pod>_<time>.tar.gz): the
pod as the API holds it, its Events and its workload's, each container's log (current
and previous), everything under /sickbay (the dumps in diag/, the supervisor's state in
run/), each container's process table and open files as the shim's busybox reads them,
its node's conditions and NodeHealth, sickbay's annotations, and a MANIFEST listing each
file, its size, and what could not be collected and why. Content beyond --max-size is
left out (listed in the MANIFEST); nothing is held in memory whole. Works for a pod that
is not quarantined too. -n defaults to the kubeconfig context's namespace.

Exit codes: 0 written, 2 usage, 3 no such pod, 4 the pod has no sickbay shim,
5 not allowed (to read the pod or exec into it), 1 anything else.
`,
  release: `Usage: ${PROG} release <namespace>/<pod> [--wait 2m] [--now] [--kubeconfig <file>] [--context <name>]

Ends a quarantine now. Asks sickbay's controller (annotation sickbay.io/release) and waits
up to --wait: the controller writes the scene's bundle to the archive first, when one is
configured, then deletes the pod, as at the quarantine's TTL; it says where the bundle went.
--now deletes the pod here and now, its scene with it, without an archive.
`,
  archives: `Usage: ${PROG} archives list [-n <namespace>] [--workload <Kind/name>] [--pod <pod>] [--since <24h>]
       ${PROG} archives get <key> [-o <file>]

The scene bundles sickbay wrote to its archive before deleting pods (keys
<prefix><namespace>/<kind>-<workload>/<pod>_<time>.tar.gz), oldest first; get downloads
one (default: its file name, in the current folder; an existing file is not replaced).
Reads the archive settings of \`sickbay serve\` from the environment: SICKBAY_ARCHIVE_ENDPOINT,
SICKBAY_ARCHIVE_BUCKET, SICKBAY_ARCHIVE_PREFIX, SICKBAY_ARCHIVE_REGION,
SICKBAY_ARCHIVE_ACCESS_KEY_ID, SICKBAY_ARCHIVE_SECRET_ACCESS_KEY, SICKBAY_ARCHIVE_CA_FILE.
`,
  agent: `Usage: ${PROG} agent --node-name <node> [--kubeconfig <file>] [--context <name>]

Checks the node every second (kubelet health, pressure conditions, network targets,
runtime and CNI processes under SICKBAY_AGENT_PROC_ROOT) and reports to the NodeHealth
named after it. --node-name defaults to $SICKBAY_NODE_NAME. Configured by SICKBAY_AGENT_*
variables (see the README's configuration table).
`,
  node: `Usage: ${PROG} node protect <node> --for <duration> [--namespace sickbay-system] [--kubeconfig <file>] [--context <name>]
       ${PROG} node restore <node> [--namespace sickbay-system] [--kubeconfig <file>] [--context <name>]

protect: sets the node's protection lock (a Lease in sickbay's namespace) for <duration>
         from now (30m, 2h, 1d; 0 lifts it). A protected node is never isolated.
restore: removes the sickbay.io/isolated taint and the sickbay.io/node-status label.
         The lock taken at isolation stays, so the node is not isolated again at once.
`,
  serve: `Usage: ${PROG} serve [--kubeconfig <file>] [--context <name>]

Serves POST /mutate, /validate, /alerts and GET /healthz, /readyz, /metrics over HTTPS,
and runs the controllers on the replica holding the lease. Configuration comes from
SICKBAY_* environment variables (see the README's configuration table).
`,
  certs: `Usage: ${PROG} certs [--out certs] [--service sickbay] [--namespace sickbay-system]
                     [--dns <name>]... [--ip <address>]... [--days 365] [--url <https://host:port>]

Writes <out>/ca.crt, <out>/tls.crt, <out>/tls.key (an existing CA in <out> is reused, so
re-running rotates the serving certificate only) and <out>/webhook-config/*.yaml with the
CA bundle filled in. --url registers the webhooks by URL instead of by Service.
`,
};

/** A failure the user can fix; printed as it is, exit status 1. */
class CliError extends Error {}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The kubeconfig, as kubectl finds it; none at all is an error (client-node would
 * otherwise fall back to http://localhost:8080 and fail later with less to go on).
 */
export function loadKubeConfig(file?: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) {
    if (!existsSync(file)) throw new CliError(`--kubeconfig ${file}: no such file`);
    kc.loadFromFile(file);
  } else if (process.env.KUBECONFIG || existsSync(path.join(homedir(), '.kube', 'config')) || existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromDefault();
  } else {
    throw new CliError('no kubeconfig: pass --kubeconfig <file>, set $KUBECONFIG, or create ~/.kube/config (inside a pod, its ServiceAccount is used)');
  }
  if (context !== undefined) {
    if (!kc.getContextObject(context)) throw new CliError(`context ${JSON.stringify(context)} is not in the kubeconfig (it has: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) throw new CliError(`the kubeconfig's current context ${JSON.stringify(kc.getCurrentContext())} names no cluster; pass --context`);
  return kc;
}

/** A command that talks to the cluster: an unreachable one is said plainly, and waited for 30 s at most. */
async function withCluster<T>(kc: KubeConfig, run: () => Promise<T>): Promise<T> {
  const server = kc.getCurrentCluster()?.server ?? '?';
  try {
    return await withDeadline(run(), 30_000, `the cluster at ${server}`);
  } catch (err) {
    if (codeOf(err) === 401 || codeOf(err) === 403) throw new CliError(`the cluster at ${server} (context ${kc.getCurrentContext()}) refused: ${(err as Error).message.split('\n')[0]}`);
    if (codeOf(err) !== undefined) throw err;
    const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
    const why = e.cause?.code ?? e.code ?? e.cause?.message ?? e.message;
    throw new CliError(`cannot reach the cluster at ${server} (context ${kc.getCurrentContext()}): ${why}`);
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

type Output = 'text' | 'json' | 'yaml';
function outputFormat(o: string | undefined, allowed: Output[]): Output {
  const v = (o ?? allowed[0]) as Output;
  if (!allowed.includes(v)) throw new CliError(`-o ${o}: choose one of ${allowed.join(', ')}`);
  return v;
}

const KUBE_OPTIONS = { kubeconfig: { type: 'string' }, context: { type: 'string' } } as const;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === 'version') {
    process.stdout.write(`sickbay ${version()}\n`);
    return 0;
  }
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (wantsHelp && HELP[command]) {
    process.stdout.write(HELP[command]);
    return 0;
  }
  switch (command) {
    case 'certs': {
      const { values } = parseArgs({
        args: rest,
        options: {
          out: { type: 'string', default: 'certs' },
          service: { type: 'string', default: 'sickbay' },
          namespace: { type: 'string', default: 'sickbay-system' },
          dns: { type: 'string', multiple: true, default: [] },
          ip: { type: 'string', multiple: true, default: [] },
          days: { type: 'string', default: '365' },
          url: { type: 'string' },
          kubeconfig: { type: 'string' },
        },
      });
      const res = writeCerts({
        outDir: values.out,
        service: values.service,
        namespace: values.namespace,
        dnsNames: values.dns,
        ipAddresses: values.ip,
        validityDays: Number(values.days),
        url: values.url,
      });
      process.stdout.write(`wrote ${res.caFile}, ${res.certFile}, ${res.keyFile}\nwebhook configurations: ${res.manifests.join(', ')}\n`);
      return 0;
    }
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: KUBE_OPTIONS });
      const config = readConfig();
      const log = createLogger(config.logLevel);
      exitOnUnhandled('serve');
      const kubeConfig = config.controllers || config.server.tlsSecret ? loadKubeConfig(values.kubeconfig, values.context) : undefined;
      const { buildComponents } = await import('./manager/components.js');
      const handle = await serve(config, log, { kubeConfig, components: kubeConfig && config.controllers ? (ctx) => buildComponents(config, kubeConfig, ctx) : undefined });
      await new Promise<void>((resolve) => {
        for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => void handle.shutdown().then(resolve));
      });
      return 0;
    }
    case 'status': {
      const { values } = parseArgs({ args: rest, options: { ...KUBE_OPTIONS, output: { type: 'string', short: 'o' }, namespace: { type: 'string', default: cliNamespace() } } });
      const output = outputFormat(values.output, ['text', 'json', 'yaml']);
      const { formatStatus, statusReport } = await import('./cli/status.js');
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      const report = await withCluster(kc, () => statusReport(kc, values.namespace));
      process.stdout.write(output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : output === 'yaml' ? yaml.dump(report, { noRefs: true, lineWidth: -1 }) : formatStatus(report));
      return 0;
    }
    case 'release': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { ...KUBE_OPTIONS, now: { type: 'boolean', default: false }, wait: { type: 'string', default: '2m' } } });
      if (positionals.length !== 1) {
        process.stderr.write(HELP.release!);
        return 2;
      }
      const { release } = await import('./cli/release.js');
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      process.stdout.write(await withCluster(kc, () => release(kc, positionals[0]!, { now: values.now, waitMs: parseDuration(values.wait) * 1000 })));
      return 0;
    }
    case 'archives': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { namespace: { type: 'string', short: 'n' }, workload: { type: 'string' }, pod: { type: 'string' }, since: { type: 'string' }, output: { type: 'string', short: 'o' } },
      });
      const [sub, key] = positionals;
      if ((sub !== 'list' && sub !== 'get') || (sub === 'get' && (!key || positionals.length !== 2)) || (sub === 'list' && positionals.length !== 1)) {
        process.stderr.write(HELP.archives!);
        return 2;
      }
      const { readArchiveConfig } = await import('./core/config.js');
      const archive = readArchiveConfig();
      if (!archive) {
        process.stderr.write(`${PROG} archives: no archive configured: set SICKBAY_ARCHIVE_ENDPOINT, SICKBAY_ARCHIVE_BUCKET and the credentials as for \`sickbay serve\` (see --help)\n`);
        return 2;
      }
      const { getArchive, listArchives, renderList } = await import('./cli/archives.js');
      if (sub === 'list') {
        const since = values.since ? new Date(Date.now() - parseDuration(values.since) * 1000) : undefined;
        process.stdout.write(renderList(await listArchives(archive, { namespace: values.namespace, workload: values.workload, pod: values.pod, since })));
      } else {
        const r = await getArchive(archive, key!, values.output);
        process.stdout.write(`wrote ${r.file}\n`);
      }
      return 0;
    }
    case 'inject': {
      const { values } = parseArgs({ args: rest, options: { filename: { type: 'string', short: 'f' }, output: { type: 'string', short: 'o' }, 'shim-image': { type: 'string' } } });
      if (!values.filename) {
        process.stderr.write(HELP.inject!);
        return 2;
      }
      const output = outputFormat(values.output, ['yaml', 'json']) as 'yaml' | 'json';
      let text: string;
      try {
        text = readFileSync(values.filename === '-' ? 0 : values.filename, 'utf8');
      } catch (err) {
        throw new CliError(`-f ${values.filename}: ${(err as Error).message}`);
      }
      const config = readConfig();
      const { injectManifest, renderManifest } = await import('./cli/inject.js');
      let result;
      try {
        result = injectManifest(text, { shimImage: values['shim-image'] ?? config.injection.shimImage, shimSource: config.injection.shimSource, pullSecrets: config.injection.shimPullSecrets });
      } catch (err) {
        throw new CliError(`-f ${values.filename}: ${(err as Error).message}`);
      }
      process.stdout.write(renderManifest(result.documents, output));
      for (const n of result.notes) process.stderr.write(`# ${n}\n`);
      return 0;
    }
    case 'collect': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { ...KUBE_OPTIONS, namespace: { type: 'string', short: 'n' }, output: { type: 'string', short: 'o' }, 'max-size': { type: 'string', default: '1Gi' } },
      });
      if (positionals.length !== 1) {
        process.stderr.write(HELP.collect!);
        return 2;
      }
      let maxBytes: number;
      try {
        const { parseSize } = await import('./cli/collect.js');
        maxBytes = parseSize(values['max-size']);
      } catch (err) {
        process.stderr.write(`${PROG} collect: --max-size ${values['max-size']}: ${(err as Error).message}\n`);
        return 2;
      }
      const { collect, CollectError } = await import('./cli/collect.js');
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      const namespace = values.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
      let last = 0;
      const progress = process.stderr.isTTY
        ? (bytes: number) => {
            if (Date.now() - last < 500) return;
            last = Date.now();
            process.stderr.write(`\rcollecting: ${(bytes / 2 ** 20).toFixed(1)} MiB`);
          }
        : undefined;
      try {
        const r = await collect(kc, { namespace, pod: positionals[0]!, file: values.output && path.resolve(values.output), maxBytes, progress });
        if (progress) process.stderr.write('\r\x1b[K');
        process.stdout.write(`wrote ${r.file}: ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB of content${r.missing.length ? `; ${r.missing.length} not collected (see MANIFEST)` : ''}\n`);
        return 0;
      } catch (err) {
        if (err instanceof CollectError) {
          process.stderr.write(`${PROG} collect: ${err.message}\n`);
          return err.exitCode;
        }
        throw err;
      }
    }
    case 'agent': {
      const { values } = parseArgs({ args: rest, options: { ...KUBE_OPTIONS, 'node-name': { type: 'string' } } });
      const config = readConfig();
      const nodeName = values['node-name'] || config.agent.nodeName;
      if (!nodeName) {
        process.stderr.write('sickbay agent: --node-name (or SICKBAY_NODE_NAME) is required\n');
        return 2;
      }
      const log = createLogger(config.logLevel).child({ component: 'agent' });
      exitOnUnhandled('agent');
      const { runAgent } = await import('./agent/command.js');
      const handle = await runAgent(config.agent, loadKubeConfig(values.kubeconfig, values.context), log, { nodeName, version: version() });
      await new Promise<void>((resolve) => {
        for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => void handle.stop().then(resolve));
      });
      return 0;
    }
    case 'node': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { ...KUBE_OPTIONS, for: { type: 'string' }, namespace: { type: 'string', default: cliNamespace() } },
      });
      const [action, node, ...extra] = positionals;
      if (!node || extra.length || (action !== 'protect' && action !== 'restore')) {
        process.stderr.write(HELP.node!);
        return 2;
      }
      const { protect, restore } = await import('./cli/node.js');
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      if (action === 'restore') {
        process.stdout.write(await withCluster(kc, () => restore(kc, { namespace: values.namespace, node })));
        return 0;
      }
      if (values.for === undefined) {
        process.stderr.write('sickbay node protect: --for <duration> is required (e.g. 45m, 2h; 0 lifts the lock)\n');
        return 2;
      }
      const seconds = parseDuration(values.for);
      if (seconds !== 0 && (seconds < 60 || seconds > 7 * 86400)) throw new Error(`--for ${values.for}: choose between 1m and 7d (or 0 to lift the lock)`);
      process.stdout.write(await withCluster(kc, () => protect(kc, { namespace: values.namespace, node, seconds })));
      return 0;
    }
    default:
      process.stderr.write(`${PROG}: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${PROG}: ${err instanceof ConfigError || err instanceof CliError || err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
