// The command line's words: each command's synopsis and help, the exit codes, and shell
// completion made from them. `sickbay --help` prints these, docs/reference/cli.md is
// generated from them (`npm run docs`), and the completion scripts offer their flags.
import { codeOf, errorText } from '../kube/errors.js';

export interface CommandDoc {
  name: string;
  /** Its line in `sickbay --help`. */
  summary: string;
  /** `<command> --help`; `$0` stands for how the user called us (`sickbay` or `kubectl sickbay`). */
  help: string;
  /** Subcommands, offered by completion. */
  sub?: string[];
}

const KUBE = '[--kubeconfig <file>] [--context <name>]';

export const COMMANDS: CommandDoc[] = [
  {
    name: 'serve',
    summary: 'webhook + controllers over TLS (configured by SICKBAY_* variables)',
    help: `Usage: $0 serve ${KUBE}

Serves POST /mutate, /validate, /alerts and GET /healthz, /readyz, /metrics over HTTPS,
and runs the controllers on the replica holding the lease. Configuration comes from
SICKBAY_* environment variables (docs/reference/configuration.md).
`,
  },
  {
    name: 'agent',
    summary: 'node agent for one node (checks, NodeHealth heartbeats)',
    help: `Usage: $0 agent --node-name <node> ${KUBE}

Checks the node every second (kubelet health, pressure conditions, network targets,
runtime and CNI processes under SICKBAY_AGENT_PROC_ROOT) and reports to the NodeHealth
named after it. --node-name defaults to $SICKBAY_NODE_NAME. Configured by SICKBAY_AGENT_*
variables (docs/reference/configuration.md).
`,
  },
  {
    name: 'certs',
    summary: 'CA + serving certificate into certs/, webhook configurations rendered',
    help: `Usage: $0 certs [--out certs] [--service sickbay] [-n|--namespace sickbay-system]
                     [--dns <name>]... [--ip <address>]... [--days 365] [--url <https://host:port>]
                     [--apply [--secret <service>-tls]] ${KUBE}

Writes <out>/ca.crt, <out>/tls.crt, <out>/tls.key (an existing CA in <out> is reused, so
re-running rotates the serving certificate only) and <out>/webhook-config/*.yaml with the
CA bundle filled in. --namespace is the namespace sickbay is installed in (its Service's).
--url registers the webhooks by URL instead of by Service. --apply also writes them to
the cluster of the kubeconfig as the Secret the chart's certificates.selfManaged.existingSecret
names (keys tls.crt, tls.key, ca.crt; created or replaced).
`,
  },
  {
    name: 'status',
    summary: 'quarantined pods, isolated nodes, unsupervised containers, avoid-lists',
    help: `Usage: $0 status [-n <namespace>] [-o text|json|yaml] [--sickbay-namespace sickbay-system] ${KUBE}

Lists quarantined pods (age, owner, reason), isolated and protected nodes, unhealthy
NodeHealths, pods that escaped injection, containers running without the supervisor
(with the annotation that fixes each), and the nodes Deployments avoid. -n limits the
pods and workloads to one namespace (default: all). --sickbay-namespace is where sickbay
runs (its node locks; default $SICKBAY_NAMESPACE, else sickbay-system).
`,
  },
  {
    name: 'release',
    summary: 'end a quarantine now (archived first, when an archive is set, then deleted)',
    help: `Usage: $0 release <pod> [-n <namespace>] [--wait 2m] [--now] ${KUBE}
       $0 release <namespace>/<pod> ...

Ends a quarantine now. Asks sickbay's controller (annotation sickbay.io/release) and waits
up to --wait: the controller writes the scene's bundle to the archive first, when one is
configured, then deletes the pod, as at the quarantine's TTL; it says where the bundle went.
--now deletes the pod here and now, its scene with it, without an archive.
-n defaults to the kubeconfig context's namespace.
`,
  },
  {
    name: 'inject',
    summary: 'print the manifest as the webhook would mutate it, and why a container is left alone',
    help: `Usage: $0 inject -f <manifest|-> [-o yaml|json] [--shim-image <image>] [-n <namespace>] ${KUBE}

Prints the manifest (YAML or JSON, several documents, or a List) with every Pod and pod
template (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) changed as the
mutating webhook would change it in an opted-in namespace, and says on stderr, per
object, which containers are supervised and why any is left alone. Reads no cluster
unless --kubeconfig or --context is given: then the namespace's sickbay.io/flight-recorder
annotation counts as at admission (-n, else the object's namespace, else the context's).
The nodes a Deployment avoids are added at admission only. The shim image is
--shim-image, else $SICKBAY_SHIM_IMAGE, else the default.
`,
  },
  {
    name: 'collect',
    summary: "one pod's scene (dumps, logs, Events, pod, node, processes, checkpoint) in one .tar.gz",
    help: `Usage: $0 collect <pod> [-n <namespace>] [-o <file>] [--max-size 1Gi] [--sickbay-namespace sickbay-system] ${KUBE}

Writes the pod's scene to one .tar.gz (default ./<namespace>_<pod>_<time>.tar.gz): the
pod as the API holds it, its Events and its workload's, each container's log (current
and previous), everything under /sickbay (the dumps in diag/, the supervisor's state in
run/), each container's process table and open files as the shim's busybox reads them,
its node's conditions and NodeHealth, sickbay's annotations, its checkpoint archives
(checkpoints/<container>.tar, read from its node through the sickbay agent there in
--sickbay-namespace: you need pods/exec on sickbay's agents, as an archive holds the
process's memory), and a MANIFEST listing each file, its size, and what could not be
collected and why. Content beyond --max-size is left out (listed in the MANIFEST);
nothing is held in memory whole. Works for a pod that is not quarantined too. -n
defaults to the kubeconfig context's namespace.
`,
  },
  {
    name: 'archives',
    summary: 'the scene bundles sickbay archived before deleting pods',
    sub: ['list', 'get'],
    help: `Usage: $0 archives list [-n <namespace>] [--workload <Kind/name>] [--pod <pod>] [--since <24h>]
       $0 archives get <key> [-o <file>]

The scene bundles sickbay wrote to its archive before deleting pods (keys
<prefix><namespace>/<kind>-<workload>/<pod>_<time>.tar.gz), oldest first; get downloads
one (default: its file name, in the current folder; an existing file is not replaced).
Reads the archive settings of \`sickbay serve\` from the environment: SICKBAY_ARCHIVE_ENDPOINT,
SICKBAY_ARCHIVE_BUCKET, SICKBAY_ARCHIVE_PREFIX, SICKBAY_ARCHIVE_REGION,
SICKBAY_ARCHIVE_ACCESS_KEY_ID, SICKBAY_ARCHIVE_SECRET_ACCESS_KEY, SICKBAY_ARCHIVE_CA_FILE.
`,
  },
  {
    name: 'checkpoint',
    summary: "what a container checkpoint holds: its process tree, open files and memory",
    sub: ['inspect', 'restore-bundle'],
    help: `Usage: $0 checkpoint inspect <archive> [-o text|json|yaml]
       $0 checkpoint restore-bundle <archive> --rootfs <dir|image.tar> -o <dir> [--volume /sickbay=<dir>]... [--netns sickbay-restore] [--name restored]

Reads a container checkpoint archive as the kubelet writes it (sickbay.io/checkpoint-result
on a quarantined pod names it: <kubelet root>/checkpoints/checkpoint-<pod>_<namespace>-
<container>-<time>.tar on its node) and shows the container, its command and user, the
process tree with each process's threads, dumped memory and open files (paths, sockets,
pipes), and the size of the memory pages and of the filesystem changes. Reads the file
once, without unpacking it; no cluster is needed. The archive holds the container's
memory, secrets included: handle it as you would the secrets themselves.

restore-bundle makes a runc bundle of it in -o (a new folder): the image's root
filesystem (--rootfs: a folder, or the image saved as a docker-archive tarball) with
the container's changes on top, its OCI spec adjusted to this machine (a network
namespace of yours, --netns; the pod's volumes its processes use from your folders,
--volume: /sickbay, where the supervisor runs from, is the sickbay/ folder of
\`sickbay collect\`'s bundle; empty stand-ins for the other mounts; a cgroup of its own),
and CRIU's images; then prints the runc commands that restore it, running, with its
memory as it was (runc and CRIU 4.x needed, as root). docs/checkpoints.md has the steps.
`,
  },
  {
    name: 'node',
    summary: 'protect a node from isolation for a while, or lift an isolation',
    sub: ['protect', 'restore'],
    help: `Usage: $0 node protect <node> --for <duration> [--sickbay-namespace sickbay-system] ${KUBE}
       $0 node restore <node> [--sickbay-namespace sickbay-system] ${KUBE}

protect: sets the node's protection lock (a Lease in sickbay's namespace) for <duration>
         from now (30m, 2h, 1d; 0 lifts it). A protected node is never isolated.
restore: removes the sickbay.io/isolated taint and the sickbay.io/node-status label.
         The lock taken at isolation stays, so the node is not isolated again at once.
--sickbay-namespace: where sickbay runs (default $SICKBAY_NAMESPACE, else sickbay-system).
`,
  },
  {
    name: 'uninstall',
    summary: 'the emergency exit: delete every webhook and policy sickbay added, stop its controllers',
    help: `Usage: $0 uninstall --emergency [--sickbay-namespace sickbay-system] [--selector app.kubernetes.io/name=sickbay] [--keep-running] ${KUBE}

Works with sickbay dead. Deletes every MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
ValidatingAdmissionPolicyBinding and ValidatingAdmissionPolicy labelled --selector (the chart's
and webhook-config/'s are), so no pod write waits on or is refused by sickbay; then scales
sickbay's Deployment in --sickbay-namespace to 0 so no controller acts (--keep-running leaves
it). Pods keep running, quarantined ones too. \`helm upgrade --install\` puts it all back;
\`helm uninstall\` removes the rest.
`,
  },
  {
    name: 'completion',
    summary: 'a shell completion script (source <(sickbay completion bash))',
    sub: ['bash', 'zsh'],
    help: `Usage: $0 completion bash|zsh

Prints a completion script for the shell: commands, subcommands and each command's flags.
  bash: source <(sickbay completion bash)        (or save it under /etc/bash_completion.d/)
  zsh:  source <(sickbay completion zsh)         (after compinit)
`,
  },
];

/** Exit codes, the same for every command. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, refused: 4, unreachable: 5, wrongState: 6 } as const;

export const EXIT_DOCS: { code: number; meaning: string }[] = [
  { code: EXIT.ok, meaning: 'done' },
  { code: EXIT.failed, meaning: 'failed for another reason (the message says which)' },
  { code: EXIT.usage, meaning: 'usage: an unknown command or flag, a missing or malformed argument, a bad value' },
  { code: EXIT.notFound, meaning: 'not found: no such pod, node, context or archive key' },
  { code: EXIT.refused, meaning: 'refused: the cluster (or the archive) does not allow it (401, 403, an admission denial)' },
  { code: EXIT.unreachable, meaning: 'unreachable: the cluster (or the archive) did not answer' },
  { code: EXIT.wrongState, meaning: 'not applicable: the object is not in a state the command acts on (a pod not quarantined, a pod without the shim)' },
];

/** A failure the user can act on: printed as it is, with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * A failed API call about one object, as the CLI says it: 404 not found (in `notFound`'s
 * words), 401 or 403 refused, one of `refusedCodes` (a conflict, a write the API server
 * rejects) refused, any other answer failed. An error without an answer is returned as it
 * is: the CLI says the cluster cannot be reached.
 */
export function apiFailure(err: unknown, doing: string, o: { notFound?: string; refusedCodes?: number[] } = {}): Error {
  const code = codeOf(err);
  if (code === 404) return new CliError(`${doing}: ${o.notFound ?? 'not found'}`, EXIT.notFound);
  if (code === 401 || code === 403) return new CliError(`${doing}: refused: ${errorText(err)}`, EXIT.refused);
  if (code !== undefined) return new CliError(`${doing}: ${errorText(err)}`, o.refusedCodes?.includes(code) ? EXIT.refused : EXIT.failed);
  return err as Error;
}

export const commandDoc = (name: string) => COMMANDS.find((c) => c.name === name);

export function usage(prog: string): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `sickbay: keep the crash scene, restore the service.

Usage: ${prog} <command> [arguments] [flags]

Commands:
${lines.join('\n')}

Run \`${prog} <command> --help\` for a command's arguments and flags; \`${prog} --version\` for the version.

Global flags:
  --kubeconfig <file>   kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  --context <name>      kubeconfig context to use (default: its current context)
  -n, --namespace <ns>  the target namespace, as in kubectl

Exit codes:
${EXIT_DOCS.map((e) => `  ${e.code}  ${e.meaning}`).join('\n')}
`;
}

export const helpText = (c: CommandDoc, prog: string) => c.help.replaceAll('$0', prog);

/** The long names of the short flags every command that takes them spells the same way. */
const SHORT_FLAGS: Record<string, string> = { '-n': '--namespace', '-o': '--output', '-f': '--filename' };

/** The flags a command's help names (`--out`, `-n` and so `--namespace`), for completion. */
export function flagsOf(c: CommandDoc): string[] {
  const flags = new Set<string>(['--help']);
  for (const m of c.help.matchAll(/(?<![\w-])(--?[a-z][a-z-]*)/g)) {
    flags.add(m[1]!);
    const long = SHORT_FLAGS[m[1]!];
    if (long) flags.add(long);
  }
  return [...flags].sort();
}

export function completionScript(shell: 'bash' | 'zsh', prog = 'sickbay'): string {
  const cases = COMMANDS.map((c) => `    ${c.name}) words_for="${[...(c.sub ?? []), ...flagsOf(c)].join(' ')}" ;;`).join('\n');
  const fn = `_${prog.replace(/[^a-z]/g, '_')}_complete`;
  const body = `${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" words_for
  if [ "$COMP_CWORD" -le 1 ]; then
    COMPREPLY=( $(compgen -W "${COMMANDS.map((c) => c.name).join(' ')} --help --version" -- "$cur") )
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
    *) words_for="" ;;
  esac
  COMPREPLY=( $(compgen -W "$words_for" -- "$cur") )
}
`;
  if (shell === 'bash') return `# ${prog} completion for bash\n${body}complete -o default -F ${fn} ${prog}\n`;
  return `# ${prog} completion for zsh\nautoload -U +X bashcompinit && bashcompinit\n${body}complete -o default -F ${fn} ${prog}\n`;
}
