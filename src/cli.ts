#!/usr/bin/env node
// The `sickbay` command line. Every command takes --kubeconfig and --help.
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { writeCerts } from './commands/certs.js';
import { serve } from './commands/serve.js';
import { ConfigError, parseDuration, readConfig } from './config.js';
import { createLogger, exitOnUnhandled } from './log.js';

const USAGE = `sickbay: keep the crash scene, restore the service.

Usage:
  sickbay serve                          webhook + controllers over TLS (configured by SICKBAY_* variables)
  sickbay certs [options]                CA + serving certificate into certs/, webhook configurations rendered
  sickbay status                         quarantined pods, isolated nodes, avoid-lists
  sickbay release <namespace>/<pod>      end a quarantine now (deletes the pod)
  sickbay agent --node-name <node>       node agent for one node (checks, NodeHealth heartbeats)
  sickbay node protect <node> --for <d>  keep a node from being isolated for <d> (e.g. 2h; 0 lifts it)
  sickbay node restore <node>            lift an isolation (taint and label removed)
  sickbay --help | <command> --help

Global options:
  --kubeconfig <file>   kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)
`;

const HELP: Record<string, string> = {
  status: 'Usage: sickbay status [--namespace sickbay-system] [--kubeconfig <file>]\n\nLists quarantined pods (age, owner, reason), isolated and protected nodes, unhealthy NodeHealths and the nodes Deployments avoid.\n',
  release: 'Usage: sickbay release <namespace>/<pod> [--kubeconfig <file>]\n\nEnds a quarantine now by deleting the quarantined pod.\n',
  agent: `Usage: sickbay agent --node-name <node> [--kubeconfig <file>]

Checks the node every second (kubelet health, pressure conditions, network targets,
runtime and CNI processes under SICKBAY_AGENT_PROC_ROOT) and reports to the NodeHealth
named after it. --node-name defaults to $SICKBAY_NODE_NAME. Configured by SICKBAY_AGENT_*
variables (see the README's configuration table).
`,
  node: `Usage: sickbay node protect <node> --for <duration> [--namespace sickbay-system] [--kubeconfig <file>]
       sickbay node restore <node> [--namespace sickbay-system] [--kubeconfig <file>]

protect: sets the node's protection lock (a Lease in sickbay's namespace) for <duration>
         from now (30m, 2h, 1d; 0 lifts it). A protected node is never isolated.
restore: removes the sickbay.io/isolated taint and the sickbay.io/node-status label.
         The lock taken at isolation stays, so the node is not isolated again at once.
`,
  serve: `Usage: sickbay serve [--kubeconfig <file>]

Serves POST /mutate, /validate, /alerts and GET /healthz, /readyz, /metrics over HTTPS,
and runs the controllers on the replica holding the lease. Configuration comes from
SICKBAY_* environment variables (see the README's configuration table).
`,
  certs: `Usage: sickbay certs [--out certs] [--service sickbay] [--namespace sickbay-system]
                     [--dns <name>]... [--ip <address>]... [--days 365] [--url <https://host:port>]

Writes <out>/ca.crt, <out>/tls.crt, <out>/tls.key (an existing CA in <out> is reused, so
re-running rotates the serving certificate only) and <out>/webhook-config/*.yaml with the
CA bundle filled in. --url registers the webhooks by URL instead of by Service.
`,
};

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
      const { values } = parseArgs({ args: rest, options: { kubeconfig: { type: 'string' } } });
      const config = readConfig();
      const log = createLogger(config.logLevel);
      exitOnUnhandled('serve');
      const kubeConfig = config.controllers ? loadKubeConfig(values.kubeconfig) : undefined;
      const { buildComponents } = await import('./commands/components.js');
      const handle = await serve(config, log, { kubeConfig, components: kubeConfig ? (ctx) => buildComponents(config, kubeConfig, ctx) : undefined });
      await new Promise<void>((resolve) => {
        for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => void handle.shutdown().then(resolve));
      });
      return 0;
    }
    case 'status': {
      const { values } = parseArgs({ args: rest, options: { kubeconfig: { type: 'string' }, namespace: { type: 'string', default: process.env.SICKBAY_NAMESPACE || 'sickbay-system' } } });
      const { status } = await import('./commands/status.js');
      process.stdout.write(await status(loadKubeConfig(values.kubeconfig), values.namespace));
      return 0;
    }
    case 'release': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { kubeconfig: { type: 'string' } } });
      if (positionals.length !== 1) {
        process.stderr.write('usage: sickbay release <namespace>/<pod>\n');
        return 2;
      }
      const { release } = await import('./commands/status.js');
      process.stdout.write(await release(loadKubeConfig(values.kubeconfig), positionals[0]!));
      return 0;
    }
    case 'agent': {
      const { values } = parseArgs({ args: rest, options: { kubeconfig: { type: 'string' }, 'node-name': { type: 'string' } } });
      const config = readConfig();
      const nodeName = values['node-name'] || config.agent.nodeName;
      if (!nodeName) {
        process.stderr.write('sickbay agent: --node-name (or SICKBAY_NODE_NAME) is required\n');
        return 2;
      }
      const log = createLogger(config.logLevel).child({ component: 'agent' });
      exitOnUnhandled('agent');
      const { runAgent } = await import('./commands/agent.js');
      const handle = await runAgent(config, loadKubeConfig(values.kubeconfig), log, { nodeName, version: process.env.npm_package_version });
      await new Promise<void>((resolve) => {
        for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => void handle.stop().then(resolve));
      });
      return 0;
    }
    case 'node': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { kubeconfig: { type: 'string' }, for: { type: 'string' }, namespace: { type: 'string', default: process.env.SICKBAY_NAMESPACE || 'sickbay-system' } },
      });
      const [action, node, ...extra] = positionals;
      if (!node || extra.length || (action !== 'protect' && action !== 'restore')) {
        process.stderr.write(HELP.node!);
        return 2;
      }
      const { protect, restore } = await import('./commands/node.js');
      const kc = loadKubeConfig(values.kubeconfig);
      if (action === 'restore') {
        process.stdout.write(await restore(kc, { namespace: values.namespace, node }));
        return 0;
      }
      if (values.for === undefined) {
        process.stderr.write('sickbay node protect: --for <duration> is required (e.g. 45m, 2h; 0 lifts the lock)\n');
        return 2;
      }
      const seconds = parseDuration(values.for);
      if (seconds !== 0 && (seconds < 60 || seconds > 7 * 86400)) throw new Error(`--for ${values.for}: choose between 1m and 7d (or 0 to lift the lock)`);
      process.stdout.write(await protect(kc, { namespace: values.namespace, node, seconds }));
      return 0;
    }
    default:
      process.stderr.write(`sickbay: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`sickbay: ${err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
