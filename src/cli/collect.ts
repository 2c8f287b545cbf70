// `sickbay collect POD`: one pod's scene in one .tar.gz, for the on-call engineer who
// comes the next morning. What the API holds (the pod, its Events and its workload's, its
// containers' logs, its node's conditions and NodeHealth, sickbay's annotations) and what
// the container holds (everything under /sickbay: the dumps in diag/, the supervisor's
// state in run/; the process table and open files as the shim's busybox reads them).
// The container's files come out as a tar stream through exec and are re-packed entry by
// entry: no dump is ever held in memory, and the size cap is kept while streaming. A
// MANIFEST lists each file, its size, and what could not be collected and why.
// A checkpoint (sickbay.io/checkpoint-result) is on its node, in the kubelet's folder:
// it comes through an exec into that node's sickbay agent, which mounts the folder, so
// only who may exec into sickbay's agents (their namespace's admins, and sickbay itself
// for the scene archive, by the chart's scope policy that one read only) takes a
// process's memory off the node.
import { createReadStream, createWriteStream, mkdtempSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { AppsV1Api, AuthorizationV1Api, CoreV1Api, CustomObjectsApi, dumpYaml, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { extract as tarExtract, pack as tarPack, type Header as TarHeader } from 'tar-stream';
import { codeOf, errorText } from '../kube/api.js';
import { execInPod } from '../kube/exec.js';
import { type CheckpointResult, NODEHEALTH_GROUP, NODEHEALTH_PLURAL, NODEHEALTH_VERSION } from '../core/nodehealth.js';
import { ANN_CHECKPOINT_RESULT, PREFIX, SHIM_MOUNT, SHIM_VOLUME } from '../core/names.js';
import { EXIT } from './commands.js';
import { COLLECT_FDS_COMMAND, COLLECT_PS_COMMAND, COLLECT_TAR_COMMAND } from '../core/shim-commands.js';

/** The CLI's exit codes for what stops a collection (src/cli/commands.ts). */
export const COLLECT_EXIT = { notFound: EXIT.notFound, noShim: EXIT.wrongState, forbidden: EXIT.refused } as const;

export class CollectError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface CollectOptions {
  namespace: string;
  pod: string;
  /** Default: ./<namespace>_<pod>_<time>.tar.gz */
  file?: string;
  /** Write the bundle here instead of a file (the scene archive's upload); it is ended, or destroyed on failure. */
  out?: Writable;
  /** Check first that the caller may exec into the pod (a person's CLI: a clear error); sickbay itself is granted it. */
  checkAccess?: boolean;
  /** Content bytes at most (1 GiB by default): what does not fit is listed in the MANIFEST as left out. */
  maxBytes: number;
  now?: Date;
  /** Called as content is written (bytes so far), for a progress line. */
  progress?: (bytes: number) => void;
  /** Each exec into the pod is cut off after this (10 min: a heap dump can be large). */
  execTimeoutMs?: number;
  /** Take the pod's checkpoint archives off their node, through the node's agent in this namespace (sickbay's); unset: none. */
  checkpointsFrom?: string;
}

/** The agent image's busybox (the Dockerfile copies it there for the shim), reading one archive. */
const AGENT_BUSYBOX = '/opt/sickbay/shim/busybox';

export interface CollectResult {
  file: string;
  bytes: number;
  files: number;
  missing: Array<{ path: string; why: string }>;
}

const BUSYBOX = `${SHIM_MOUNT}/bin/busybox`;

/** "1Gi", "500Mi", "64Ki", or bytes. */
export function parseSize(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?\s*$/.exec(raw);
  if (!m) throw new Error(`not a size: ${JSON.stringify(raw)} (use e.g. 1Gi, 500Mi)`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Math.floor(Number(m[1]) * unit);
}

/** A time as it stands in bundle and archive names: 20261207T101808Z. */
export const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

/** The bundle as it is written: entries under one folder, counted against the cap. */
class Bundle {
  readonly pack = tarPack();
  written = 0;
  readonly files: Array<{ path: string; bytes: number }> = [];
  readonly missing: Array<{ path: string; why: string }> = [];

  constructor(
    private readonly root: string,
    private readonly max: number,
    private readonly mtime: Date,
    private readonly progress?: (bytes: number) => void,
  ) {}

  left() {
    return this.max - this.written;
  }

  private counted(p: string, bytes: number) {
    this.written += bytes;
    this.files.push({ path: p, bytes });
    this.progress?.(this.written);
  }

  miss(p: string, why: string) {
    this.missing.push({ path: p, why });
  }

  add(p: string, content: string | Buffer) {
    const buf = Buffer.from(content);
    if (buf.length > this.left()) return this.miss(p, `over the size cap (${buf.length} bytes, ${this.left()} left of ${this.max})`);
    this.pack.entry({ name: `${this.root}/${p}`, size: buf.length, mtime: this.mtime }, buf);
    this.counted(p, buf.length);
  }

  /** A sink for a tar stream: its entries re-packed under `prefix` as they arrive. */
  tarSink(prefix: string) {
    const ex = tarExtract();
    ex.on('entry', (header: TarHeader, stream, next) => {
      const name = `${prefix}/${header.name.replace(/^\.\//, '')}`.replace(/\/+$/, '');
      if (header.type !== 'file' && header.type !== 'directory') {
        stream.resume();
        stream.on('end', next);
        return;
      }
      const size = header.size ?? 0;
      if (header.type === 'file' && size > this.left()) {
        this.miss(name, `over the size cap (${size} bytes, ${this.left()} left of ${this.max})`);
        stream.resume();
        stream.on('end', next);
        return;
      }
      const entry = this.pack.entry({ ...header, name: `${this.root}/${name}`, uid: 0, gid: 0, uname: '', gname: '' }, next);
      stream.pipe(entry);
      if (header.type === 'file') this.counted(name, size);
    });
    return ex;
  }

  manifest(): string {
    const lines = [
      `# sickbay collect: ${this.files.length} files, ${this.written} bytes of content (cap ${this.max}).`,
      '# bytes\tpath',
      ...this.files.map((f) => `${f.bytes}\t${f.path}`),
      ...(this.missing.length ? ['', '# not collected, and why', ...this.missing.map((m) => `missing\t${m.path}\t${m.why}`)] : []),
    ];
    return `${lines.join('\n')}\n`;
  }

  /** A file of known size, streamed in (the checkpoint archives, staged on disk first). */
  async addFile(p: string, file: string): Promise<void> {
    const size = statSync(file).size;
    if (size > this.left()) return this.miss(p, `over the size cap (${size} bytes, ${this.left()} left of ${this.max})`);
    await pipeline(createReadStream(file), this.pack.entry({ name: `${this.root}/${p}`, size, mtime: this.mtime }));
    this.counted(p, size);
  }
}

/** Each checkpoint archive of the pod, through an exec into its node's agent (see the file's comment). */
async function addCheckpoints(kc: KubeConfig, pod: V1Pod, bundle: Bundle, agentNamespace: string, timeoutMs: number) {
  const raw = pod.metadata?.annotations?.[ANN_CHECKPOINT_RESULT];
  if (!raw) return;
  let result: Partial<CheckpointResult>;
  try {
    result = JSON.parse(raw) as Partial<CheckpointResult>;
  } catch {
    return bundle.miss('checkpoints/', `${ANN_CHECKPOINT_RESULT} is not JSON`);
  }
  const taken = (result.containers ?? []).filter((c) => c.status === 'ok' && c.archive);
  if (!taken.length || !result.node) return;
  const core = kc.makeApiClient(CoreV1Api);
  const agents = await core
    .listNamespacedPod({ namespace: agentNamespace, labelSelector: 'app.kubernetes.io/component=agent', fieldSelector: `spec.nodeName=${result.node}` })
    .catch((err) => (bundle.miss('checkpoints/', `cannot find the sickbay agent on node ${result.node} in namespace ${agentNamespace}: ${errorText(err)}`), undefined));
  if (!agents) return;
  const agent = agents.items.find((p) => p.status?.phase === 'Running');
  if (!agent) return bundle.miss('checkpoints/', `no running sickbay agent on node ${result.node} in namespace ${agentNamespace} (--sickbay-namespace) to read the archives from`);
  const review = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
    body: { spec: { resourceAttributes: { namespace: agentNamespace, verb: 'create', resource: 'pods', subresource: 'exec', name: agent.metadata!.name! } } },
  });
  if (!review.status?.allowed) return bundle.miss('checkpoints/', `not allowed to exec into the sickbay agent ${agentNamespace}/${agent.metadata!.name} (create pods/exec), which taking a checkpoint off its node needs: an archive holds the process's memory`);
  const staging = mkdtempSync(path.join(tmpdir(), 'sickbay-collect-'));
  try {
    for (const c of taken) {
      const p = `checkpoints/${c.name}.tar`;
      if ((c.bytes ?? 0) > 0 && c.bytes! > bundle.left()) {
        bundle.miss(p, `over the size cap (${c.bytes} bytes, ${bundle.left()} left); on node ${result.node}: ${c.archive}`);
        continue;
      }
      const file = path.join(staging, `${c.name}.tar`);
      const sink = createWriteStream(file, { mode: 0o600 });
      const closed = new Promise<void>((resolve) => sink.on('close', () => resolve()));
      const r = await execInPod(kc, { namespace: agentNamespace, pod: agent.metadata!.name!, container: 'agent' }, [AGENT_BUSYBOX, 'cat', '--', c.archive!], timeoutMs, { stdout: sink });
      sink.end();
      await closed;
      if (r.error || r.exitCode !== 0) {
        bundle.miss(p, `reading ${c.archive} through the agent on ${result.node}: ${r.error ?? `exit ${r.exitCode}: ${r.stderr.trim().slice(-300)}`}`);
        continue;
      }
      const read = statSync(file).size;
      if (c.bytes !== undefined && read !== c.bytes) {
        bundle.miss(p, `read ${read} bytes of ${c.archive}, which had ${c.bytes}`);
        continue;
      }
      await bundle.addFile(p, file);
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** A pod's workload references, for its Events: its controller, and the Deployment behind a ReplicaSet. */
async function workloadOf(kc: KubeConfig, pod: V1Pod): Promise<Array<{ kind: string; name: string }>> {
  const ref = pod.metadata?.ownerReferences?.find((r) => r.controller) ?? pod.metadata?.ownerReferences?.[0];
  if (!ref) return [];
  const out = [{ kind: ref.kind, name: ref.name }];
  if (ref.kind === 'ReplicaSet') {
    const rs = await kc.makeApiClient(AppsV1Api).readNamespacedReplicaSet({ name: ref.name, namespace: pod.metadata!.namespace! }).catch(() => undefined);
    const dep = rs?.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'Deployment');
    if (dep) out.push({ kind: 'Deployment', name: dep.name });
  }
  return out;
}

function sickbayAnnotations(pod: V1Pod): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(pod.metadata?.annotations ?? {})) {
    if (!k.startsWith(`${PREFIX}/`)) continue;
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

export async function collect(kc: KubeConfig, o: CollectOptions): Promise<CollectResult> {
  const core = kc.makeApiClient(CoreV1Api);
  const { namespace, pod: name } = o;
  const pod = await core.readNamespacedPod({ name, namespace }).catch((err) => {
    if (codeOf(err) === 404) throw new CollectError(`no pod ${namespace}/${name}`, COLLECT_EXIT.notFound);
    if (codeOf(err) === 403) throw new CollectError(`not allowed to read pod ${namespace}/${name}: ${errorText(err)}`, COLLECT_EXIT.forbidden, { cause: err });
    throw err;
  });
  const shimmed = (pod.spec?.containers ?? []).filter((c) => c.volumeMounts?.some((m) => m.name === SHIM_VOLUME));
  if (shimmed.length === 0) throw new CollectError(`pod ${namespace}/${name} has no sickbay shim (it was not injected: its namespace was not opted in, or it is labelled sickbay.io/inject=false); there is no scene in it to collect`, COLLECT_EXIT.noShim);
  if (o.checkAccess !== false) {
    const review = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
      body: { spec: { resourceAttributes: { namespace, verb: 'create', resource: 'pods', subresource: 'exec', name } } },
    });
    if (!review.status?.allowed) throw new CollectError(`not allowed to exec into pod ${namespace}/${name} (create pods/exec), which collecting its scene needs${review.status?.reason ? `: ${review.status.reason}` : ''}`, COLLECT_EXIT.forbidden);
  }

  const now = o.now ?? new Date();
  const root = `${namespace}_${name}_${stamp(now)}`;
  const file = o.out ? '' : (o.file ?? path.resolve(`${root}.tar.gz`));
  const bundle = new Bundle(root, o.maxBytes, now, o.progress);
  const out = o.out ?? createWriteStream(file, { flags: 'wx' });
  const written = pipeline(bundle.pack, createGzip(), out);
  try {
    bundle.add('pod.yaml', dumpYaml(pod));
    bundle.add('sickbay-annotations.json', `${JSON.stringify(sickbayAnnotations(pod), null, 2)}\n`);

    // Events: the pod's and its workload's.
    const objects = [{ kind: 'Pod', name }, ...(await workloadOf(kc, pod))];
    const lines: string[] = [];
    for (const obj of objects) {
      const evs = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=${obj.kind},involvedObject.name=${obj.name}` }).catch((err) => (bundle.miss(`events of ${obj.kind}/${obj.name}`, errorText(err)), undefined));
      for (const e of evs?.items ?? []) {
        const at = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
        lines.push(`${at ? new Date(at as Date).toISOString() : '?'}\t${e.type}\t${e.reason}\t${obj.kind}/${obj.name}\t${e.count ?? 1}x\t${e.source?.component ?? e.reportingComponent ?? ''}\t${e.message ?? ''}`);
      }
    }
    bundle.add('events.txt', `# time\ttype\treason\tobject\tcount\tfrom\tmessage\n${lines.sort().join('\n')}\n`);

    // Each container's log, current and previous (a bounded read: the log is the kubelet's file).
    for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
      for (const previous of [false, true]) {
        const p = `logs/${c.name}${previous ? '.previous' : ''}.log`;
        const limit = Math.min(Math.max(1, o.maxBytes - bundle.written), 256 * 2 ** 20);
        await core
          .readNamespacedPodLog({ name, namespace, container: c.name, previous, limitBytes: limit })
          .then((text) => bundle.add(p, text ?? ''))
          .catch((err) => bundle.miss(p, previous && codeOf(err) === 400 ? 'no previous run of this container' : errorText(err)));
      }
    }

    // The node: its conditions and taints, and the agent's NodeHealth.
    const nodeName = pod.spec?.nodeName;
    if (nodeName) {
      await core
        .readNode({ name: nodeName })
        .then((n) => bundle.add('node.yaml', dumpYaml({ metadata: { name: n.metadata?.name, labels: n.metadata?.labels }, spec: { taints: n.spec?.taints, unschedulable: n.spec?.unschedulable }, status: { conditions: n.status?.conditions, nodeInfo: n.status?.nodeInfo } })))
        .catch((err) => bundle.miss('node.yaml', errorText(err)));
      await kc
        .makeApiClient(CustomObjectsApi)
        .getClusterCustomObject({ group: NODEHEALTH_GROUP, version: NODEHEALTH_VERSION, plural: NODEHEALTH_PLURAL, name: nodeName })
        .then((h) => bundle.add('nodehealth.yaml', dumpYaml(h)))
        .catch((err) => bundle.miss('nodehealth.yaml', codeOf(err) === 404 ? 'no NodeHealth: no sickbay agent reports this node' : errorText(err)));
    } else bundle.miss('node.yaml', 'the pod is not scheduled');

    // What the containers hold, through exec and the shim's busybox (the app image needs no tools).
    const timeoutMs = o.execTimeoutMs ?? 600_000;
    const target = (container: string) => ({ namespace, pod: name, container });
    // The shim volume is one emptyDir shared by the pod's containers: taken once.
    const sink = bundle.tarSink('sickbay');
    const drained = new Promise<void>((resolve) => {
      sink.on('finish', () => resolve());
      sink.on('close', () => resolve());
      sink.on('error', (err: Error) => (bundle.miss('sickbay/', `the container's tar stream could not be read: ${err.message}`), resolve()));
    });
    const tar = await execInPod(kc, target(shimmed[0]!.name), COLLECT_TAR_COMMAND, timeoutMs, { stdout: sink });
    sink.end(undefined); // streamx: no more data
    await drained;
    if (tar.error || tar.exitCode !== 0) bundle.miss(`sickbay/ (${SHIM_MOUNT} in container ${shimmed[0]!.name})`, tar.error ?? `tar exited ${tar.exitCode}: ${tar.stderr.trim().slice(-300)}`);
    for (const c of shimmed) {
      const ps = await execInPod(kc, target(c.name), COLLECT_PS_COMMAND, 30_000);
      if (ps.exitCode === 0) bundle.add(`containers/${c.name}/processes.txt`, ps.stdout);
      else bundle.miss(`containers/${c.name}/processes.txt`, ps.error ?? `ps exited ${ps.exitCode}: ${ps.stderr.trim()}`);
      const fds = await execInPod(kc, target(c.name), COLLECT_FDS_COMMAND, 30_000);
      if (fds.exitCode === 0) bundle.add(`containers/${c.name}/open-files.txt`, fds.stdout);
      else bundle.miss(`containers/${c.name}/open-files.txt`, fds.error ?? `exited ${fds.exitCode}: ${fds.stderr.trim()}`);
    }

    if (o.checkpointsFrom !== undefined) await addCheckpoints(kc, pod, bundle, o.checkpointsFrom, timeoutMs);
    else if (pod.metadata?.annotations?.[ANN_CHECKPOINT_RESULT]) bundle.miss('checkpoints/', 'kept on the node: not asked for (no namespace of sickbay\'s agents given)');

    bundle.pack.entry({ name: `${root}/MANIFEST`, mtime: now }, bundle.manifest());
    bundle.pack.finalize();
    await written;
  } catch (err) {
    bundle.pack.destroy(err as Error);
    await written.catch(() => undefined);
    if (file) await rm(file, { force: true });
    else out.destroy(err as Error);
    throw err;
  }
  return { file, bytes: bundle.written, files: bundle.files.length + 1, missing: bundle.missing };
}
