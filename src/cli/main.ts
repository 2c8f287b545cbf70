// The `sickbay` command line (also `kubectl-sickbay`, so `kubectl sickbay status` works).
// Every command takes --kubeconfig, --context and --help; read-only ones take -o.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { writeCerts } from './certs.js';
import { CliError, commandDoc, completionScript, EXIT, helpText, usage } from './commands.js';
import { serve } from '../manager/serve.js';
import { cliNamespace, ConfigError, parseDuration, readConfig } from '../core/config.js';
import { codeOf, errorText } from '../kube/api.js';
import { createLogger, exitOnUnhandled } from '../core/log.js';
import { withDeadline } from '../util/wait.js';

/** How the user called us: `kubectl sickbay` when kubectl runs us as its plugin. */
const PROG = path.basename(process.argv[1] ?? 'sickbay').startsWith('kubectl-') ? 'kubectl sickbay' : 'sickbay';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The kubeconfig, as kubectl finds it; none at all is an error (client-node would
 * otherwise fall back to http://localhost:8080 and fail later with less to go on).
 */
export function loadKubeConfig(file?: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) {
    if (!existsSync(file)) throw new CliError(`--kubeconfig ${file}: no such file`, EXIT.notFound);
    kc.loadFromFile(file);
  } else if (process.env.KUBECONFIG || existsSync(path.join(homedir(), '.kube', 'config')) || existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromDefault();
  } else {
    throw new CliError('no kubeconfig: pass --kubeconfig <file>, set $KUBECONFIG, or create ~/.kube/config (inside a pod, its ServiceAccount is used)');
  }
  if (context !== undefined) {
    if (!kc.getContextObject(context)) throw new CliError(`context ${JSON.stringify(context)} is not in the kubeconfig (it has: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`, EXIT.notFound);
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) throw new CliError(`the kubeconfig's current context ${JSON.stringify(kc.getCurrentContext())} names no cluster; pass --context`);
  return kc;
}

/** A command that talks to the cluster: each failure said for what it is, and waited for 30 s at most. */
async function withCluster<T>(kc: KubeConfig, run: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const where = `the cluster at ${kc.getCurrentCluster()?.server ?? '?'} (context ${kc.getCurrentContext()})`;
  try {
    return await withDeadline(run(), timeoutMs, where);
  } catch (err) {
    throw clusterError(err, where);
  }
}

/** An error from talking to the cluster, as the CLI says it: a CliError keeps its words and code. */
export function clusterError(err: unknown, where: string): CliError {
  if (err instanceof CliError) return err;
  const code = codeOf(err);
  if (code === 401 || code === 403) return new CliError(`${where} refused: ${errorText(err)}`, EXIT.refused, { cause: err });
  if (code === 404) return new CliError(`${where}: ${errorText(err)}`, EXIT.notFound, { cause: err });
  if (code !== undefined) return new CliError(`${where} answered: ${errorText(err)}`, EXIT.failed, { cause: err });
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  const why = e?.cause?.code ?? (typeof e?.code === 'string' ? e.code : undefined) ?? e?.cause?.message ?? errorText(err);
  return new CliError(`cannot reach ${where}: ${why.replace(`${where}: `, '')}`, EXIT.unreachable, { cause: err });
}

/** `sickbay inject` writes manifests for nodes it cannot see: `auto` means the init container, which works on every runtime. */
function offlineDelivery(setting: 'auto' | 'image-volume' | 'init-container'): 'image-volume' | 'init-container' {
  return setting === 'image-volume' ? 'image-volume' : 'init-container';
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

type Output = 'text' | 'json' | 'yaml';
function outputFormat(o: string | undefined, allowed: Output[]): Output {
  const v = (o ?? allowed[0]) as Output;
  if (!allowed.includes(v)) throw new CliError(`-o ${o}: choose one of ${allowed.join(', ')}`, EXIT.usage);
  return v;
}

/** A duration flag: a bad one is a usage error. */
function durationFlag(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    throw new CliError(`${flag} ${value}: ${(err as Error).message}`, EXIT.usage, { cause: err });
  }
}

/** `-n` if given, else the kubeconfig context's namespace, else `default` (as kubectl). */
const targetNamespace = (kc: KubeConfig, n: string | undefined) => n ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';

const KUBE_OPTIONS = { kubeconfig: { type: 'string' }, context: { type: 'string' } } as const;
const NAMESPACE = { namespace: { type: 'string', short: 'n' } } as const;
const SICKBAY_NAMESPACE = { 'sickbay-namespace': { type: 'string', default: cliNamespace() } } as const;

/** Parses a command's flags; an unknown flag or a missing value is a usage error that shows the command's help. */
function flags<const T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs<T>(config);
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${helpText(commandDoc(command)!, PROG)}`, EXIT.usage, { cause: err });
  }
}

const usageError = (command: string, what?: string) => new CliError(`${what ? `${what}\n\n` : ''}${helpText(commandDoc(command)!, PROG)}`.trimEnd(), EXIT.usage);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === 'version') {
    process.stdout.write(`sickbay ${version()}\n`);
    return 0;
  }
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    (command ? process.stdout : process.stderr).write(usage(PROG));
    return command ? 0 : EXIT.usage;
  }
  const doc = commandDoc(command);
  if (!doc) throw new CliError(`unknown command ${JSON.stringify(command)}\n\n${usage(PROG)}`.trimEnd(), EXIT.usage);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(helpText(doc, PROG));
    return 0;
  }
  switch (command) {
    case 'certs': {
      const { values } = flags(command, {
        args: rest,
        options: {
          ...KUBE_OPTIONS,
          out: { type: 'string', default: 'certs' },
          service: { type: 'string', default: 'sickbay' },
          namespace: { type: 'string', short: 'n', default: cliNamespace() },
          dns: { type: 'string', multiple: true, default: [] },
          ip: { type: 'string', multiple: true, default: [] },
          days: { type: 'string', default: '365' },
          url: { type: 'string' },
          apply: { type: 'boolean', default: false },
          secret: { type: 'string' },
        },
      });
      if (values.secret && !values.apply) throw usageError(command, '--secret needs --apply');
      if (!values.apply && (values.kubeconfig || values.context)) throw usageError(command, '--kubeconfig and --context are for --apply (certs reads no cluster otherwise)');
      let res;
      try {
        res = writeCerts({ outDir: values.out, service: values.service, namespace: values.namespace, dnsNames: values.dns, ipAddresses: values.ip, validityDays: Number(values.days), url: values.url });
      } catch (err) {
        throw new CliError((err as Error).message, EXIT.usage, { cause: err });
      }
      process.stdout.write(`wrote ${res.caFile}, ${res.certFile}, ${res.keyFile}\nwebhook configurations: ${res.manifests.join(', ')}\n`);
      if (values.apply) {
        const { applySecret } = await import('./certs.js');
        const kc = loadKubeConfig(values.kubeconfig, values.context);
        const name = values.secret ?? `${values.service}-tls`;
        process.stdout.write(await withCluster(kc, () => applySecret(kc, { namespace: values.namespace, name, files: res })));
      }
      return 0;
    }
    case 'serve': {
      const { values } = flags(command, { args: rest, options: KUBE_OPTIONS });
      const config = readConfig();
      const log = createLogger(config.logLevel);
      exitOnUnhandled('serve');
      const kubeConfig = config.controllers || config.server.tlsSecret || config.server.caBundleSync.enabled ? loadKubeConfig(values.kubeconfig, values.context) : undefined;
      const { buildComponents } = await import('../manager/components.js');
      const handle = await serve(config, log, { kubeConfig, components: kubeConfig && config.controllers ? (ctx) => buildComponents(config, kubeConfig, ctx) : undefined });
      await new Promise<void>((resolve) => {
        for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => void handle.shutdown().then(resolve));
      });
      return 0;
    }
    case 'status': {
      const { values, positionals } = flags(command, { args: rest, allowPositionals: true, options: { ...KUBE_OPTIONS, ...NAMESPACE, ...SICKBAY_NAMESPACE, output: { type: 'string', short: 'o' } } });
      if (positionals.length) throw usageError(command, `unexpected argument ${JSON.stringify(positionals[0])}`);
      const output = outputFormat(values.output, ['text', 'json', 'yaml']);
      const { formatStatus, inNamespace, statusReport } = await import('./status.js');
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      const all = await withCluster(kc, () => statusReport(kc, values['sickbay-namespace']));
      const report = values.namespace ? inNamespace(all, values.namespace) : all;
      process.stdout.write(output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : output === 'yaml' ? yaml.dump(report, { noRefs: true, lineWidth: -1 }) : formatStatus(report));
      return 0;
    }
    case 'checkpoint': {
      const { values, positionals } = flags(command, {
        args: rest,
        allowPositionals: true,
        options: { output: { type: 'string', short: 'o' }, rootfs: { type: 'string' }, volume: { type: 'string', multiple: true }, netns: { type: 'string', default: 'sickbay-restore' }, name: { type: 'string', default: 'restored' } },
      });
      const [sub, file] = positionals;
      if ((sub !== 'inspect' && sub !== 'restore-bundle') || positionals.length !== 2) throw usageError(command, sub === 'inspect' || sub === 'restore-bundle' ? 'which archive?' : undefined);
      const fileError = (err: unknown) => {
        const code = (err as { code?: string }).code;
        return new CliError(`${file}: ${(err as Error).message}`, code === 'ENOENT' ? EXIT.notFound : code === 'EACCES' ? EXIT.refused : EXIT.failed);
      };
      if (sub === 'restore-bundle') {
        if (!values.rootfs || !values.output) throw usageError(command, '--rootfs and -o are required');
        const volumes: Record<string, string> = {};
        for (const v of values.volume ?? []) {
          const m = /^(\/[^=]*)=(.+)$/.exec(v);
          if (!m) throw usageError(command, `--volume ${JSON.stringify(v)}: <path in the container>=<folder>, such as /sickbay=./scene/sickbay`);
          volumes[m[1]!] = m[2]!;
        }
        const { restoreBundle } = await import('../checkpoint/restore-bundle.js');
        let made;
        try {
          made = await restoreBundle(file!, { rootfs: values.rootfs, out: values.output, netns: values.netns!, name: values.name!, volumes });
        } catch (err) {
          throw fileError(err);
        }
        process.stdout.write(`bundle in ${made.bundle}; restore it (as root, CRIU 4.x on the PATH):\n${made.commands.map((c) => `  ${c}`).join('\n')}\n`);
        return 0;
      }
      const output = outputFormat(values.output, ['text', 'json', 'yaml']);
      const { inspectCheckpoint, renderCheckpoint } = await import('../checkpoint/inspect.js');
      let summary;
      try {
        summary = await inspectCheckpoint(file!);
      } catch (err) {
        throw fileError(err);
      }
      process.stdout.write(output === 'json' ? `${JSON.stringify(summary, null, 2)}\n` : output === 'yaml' ? yaml.dump(summary, { noRefs: true, lineWidth: -1 }) : renderCheckpoint(summary, file!));
      return 0;
    }
    case 'release': {
      const { values, positionals } = flags(command, { args: rest, allowPositionals: true, options: { ...KUBE_OPTIONS, ...NAMESPACE, now: { type: 'boolean', default: false }, wait: { type: 'string', default: '2m' } } });
      if (positionals.length !== 1) throw usageError(command, positionals.length ? `one pod at a time (got ${positionals.length})` : 'which pod?');
      const waitMs = durationFlag('--wait', values.wait) * 1000;
      const { release, parsePodRef } = await import('./release.js');
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      const ref = parsePodRef(positionals[0]!, targetNamespace(kc, values.namespace), values.namespace !== undefined);
      process.stdout.write(await withCluster(kc, () => release(kc, ref, { now: values.now, waitMs }), waitMs + 30_000));
      return 0;
    }
    case 'archives': {
      const { values, positionals } = flags(command, {
        args: rest,
        allowPositionals: true,
        options: { ...NAMESPACE, workload: { type: 'string' }, pod: { type: 'string' }, since: { type: 'string' }, output: { type: 'string', short: 'o' } },
      });
      const [sub, key] = positionals;
      if ((sub !== 'list' && sub !== 'get') || (sub === 'get' && (!key || positionals.length !== 2)) || (sub === 'list' && positionals.length !== 1)) throw usageError(command);
      const since = values.since ? new Date(Date.now() - durationFlag('--since', values.since) * 1000) : undefined;
      const { readArchiveConfig } = await import('../core/config.js');
      const archive = readArchiveConfig();
      if (!archive) throw new CliError(`${PROG} archives: no archive configured: set SICKBAY_ARCHIVE_ENDPOINT, SICKBAY_ARCHIVE_BUCKET and the credentials as for \`sickbay serve\` (see --help)`, EXIT.usage);
      const { archiveError, getArchive, listArchives, renderList } = await import('./archives.js');
      try {
        if (sub === 'list') process.stdout.write(renderList(await listArchives(archive, { namespace: values.namespace, workload: values.workload, pod: values.pod, since })));
        else process.stdout.write(`wrote ${(await getArchive(archive, key!, values.output)).file}\n`);
      } catch (err) {
        throw archiveError(err, archive.store.endpoint);
      }
      return 0;
    }
    case 'inject': {
      const { values } = flags(command, { args: rest, options: { ...KUBE_OPTIONS, ...NAMESPACE, filename: { type: 'string', short: 'f' }, output: { type: 'string', short: 'o' }, 'shim-image': { type: 'string' } } });
      if (!values.filename) throw usageError(command, '-f <manifest|-> is required');
      const output = outputFormat(values.output, ['yaml', 'json']) as 'yaml' | 'json';
      let text: string;
      try {
        text = readFileSync(values.filename === '-' ? 0 : values.filename, 'utf8');
      } catch (err) {
        throw new CliError(`-f ${values.filename}: ${(err as Error).message}`, (err as { code?: string }).code === 'ENOENT' ? EXIT.notFound : EXIT.failed, { cause: err });
      }
      const config = readConfig();
      const { injectManifest, namespacesIn, renderManifest } = await import('./inject.js');
      let namespaces;
      if (values.kubeconfig !== undefined || values.context !== undefined) {
        const kc = loadKubeConfig(values.kubeconfig, values.context);
        const fallback = targetNamespace(kc, values.namespace);
        const { readNamespaceAnnotations } = await import('./inject-cluster.js');
        const read = await withCluster(kc, () => readNamespaceAnnotations(kc, [...new Set([fallback, ...namespacesIn(text)])]));
        namespaces = { default: fallback, annotations: (ns: string) => read.get(ns) };
      }
      let result;
      try {
        result = injectManifest(text, { shimImage: values['shim-image'] ?? config.injection.shimImage, shimSource: config.injection.shimSource, pullSecrets: config.injection.shimPullSecrets, delivery: offlineDelivery(config.injection.shimDelivery) }, namespaces);
      } catch (err) {
        throw new CliError(`-f ${values.filename}: ${(err as Error).message}`, EXIT.usage, { cause: err });
      }
      process.stdout.write(renderManifest(result.documents, output));
      for (const n of result.notes) process.stderr.write(`# ${n}\n`);
      return 0;
    }
    case 'collect': {
      const { values, positionals } = flags(command, {
        args: rest,
        allowPositionals: true,
        options: { ...KUBE_OPTIONS, ...NAMESPACE, ...SICKBAY_NAMESPACE, output: { type: 'string', short: 'o' }, 'max-size': { type: 'string', default: '1Gi' } },
      });
      if (positionals.length !== 1) throw usageError(command, positionals.length ? `one pod at a time (got ${positionals.length})` : 'which pod?');
      const { collect, CollectError, parseSize } = await import('./collect.js');
      let maxBytes: number;
      try {
        maxBytes = parseSize(values['max-size']);
      } catch (err) {
        throw new CliError(`--max-size ${values['max-size']}: ${(err as Error).message}`, EXIT.usage, { cause: err });
      }
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      const namespace = targetNamespace(kc, values.namespace);
      let last = 0;
      const progress = process.stderr.isTTY
        ? (bytes: number) => {
            if (Date.now() - last < 500) return;
            last = Date.now();
            process.stderr.write(`\rcollecting: ${(bytes / 2 ** 20).toFixed(1)} MiB`);
          }
        : undefined;
      try {
        const r = await collect(kc, { namespace, pod: positionals[0]!, file: values.output && path.resolve(values.output), maxBytes, progress, checkpointsFrom: values['sickbay-namespace'] });
        if (progress) process.stderr.write('\r\x1b[K');
        process.stdout.write(`wrote ${r.file}: ${r.files} files, ${(r.bytes / 2 ** 20).toFixed(1)} MiB of content${r.missing.length ? `; ${r.missing.length} not collected (see MANIFEST)` : ''}\n`);
        return 0;
      } catch (err) {
        if (err instanceof CollectError) throw new CliError(err.message, err.exitCode, { cause: err });
        throw clusterError(err, `the cluster at ${kc.getCurrentCluster()?.server ?? '?'} (context ${kc.getCurrentContext()})`);
      }
    }
    case 'node': {
      const { values, positionals } = flags(command, { args: rest, allowPositionals: true, options: { ...KUBE_OPTIONS, ...SICKBAY_NAMESPACE, for: { type: 'string' } } });
      const [action, node, ...extra] = positionals;
      if (action !== 'protect' && action !== 'restore') throw usageError(command, action ? `unknown action ${JSON.stringify(action)}: protect or restore` : 'protect or restore?');
      if (!node || extra.length) throw usageError(command, node ? `one node at a time (got ${positionals.length - 1})` : 'which node?');
      const namespace = values['sickbay-namespace'];
      const { protect, restore } = await import('./node.js');
      if (action === 'restore') {
        const kc = loadKubeConfig(values.kubeconfig, values.context);
        process.stdout.write(await withCluster(kc, () => restore(kc, { namespace, node })));
        return 0;
      }
      if (values.for === undefined) throw usageError(command, '--for <duration> is required (e.g. 45m, 2h; 0 lifts the lock)');
      const seconds = durationFlag('--for', values.for);
      if (seconds !== 0 && (seconds < 60 || seconds > 7 * 86400)) throw new CliError(`--for ${values.for}: choose between 1m and 7d (or 0 to lift the lock)`, EXIT.usage);
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      process.stdout.write(await withCluster(kc, () => protect(kc, { namespace, node, seconds })));
      return 0;
    }
    case 'uninstall': {
      const { values, positionals } = flags(command, {
        args: rest,
        allowPositionals: true,
        options: { ...KUBE_OPTIONS, ...SICKBAY_NAMESPACE, emergency: { type: 'boolean', default: false }, selector: { type: 'string', default: 'app.kubernetes.io/name=sickbay' }, 'keep-running': { type: 'boolean', default: false } },
      });
      if (positionals.length) throw usageError(command, `unexpected argument ${JSON.stringify(positionals[0])}`);
      if (!values.emergency) throw usageError(command, 'only --emergency is an uninstall of its own; for the rest, helm uninstall');
      const { emergencyUninstall } = await import('./uninstall.js');
      const kc = loadKubeConfig(values.kubeconfig, values.context);
      process.stdout.write(await withCluster(kc, () => emergencyUninstall(kc, { selector: values.selector, namespace: values['sickbay-namespace'], keepRunning: values['keep-running'] })));
      return 0;
    }
    case 'completion': {
      const { positionals } = flags(command, { args: rest, allowPositionals: true, options: {} });
      const shell = positionals[0];
      if ((shell !== 'bash' && shell !== 'zsh') || positionals.length !== 1) throw usageError(command, shell ? `no completion for ${JSON.stringify(shell)}: bash or zsh` : 'which shell?');
      process.stdout.write(completionScript(shell, PROG === 'sickbay' ? 'sickbay' : 'kubectl-sickbay'));
      return 0;
    }
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}`, EXIT.usage);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const code = err instanceof CliError ? err.exitCode : EXIT.failed;
    process.stderr.write(`${PROG}: ${err instanceof Error ? (err instanceof CliError || err instanceof ConfigError ? err.message : errorText(err)) : String(err)}\n`);
    process.exit(code);
  },
);
