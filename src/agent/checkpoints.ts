// The node agent's side of a checkpoint: `sickbay serve` lists in the node's NodeHealth
// (spec.checkpoints) the containers whose checkpoint it wants kept; the agent asks its own
// kubelet for each (POST /checkpoint/{namespace}/{pod}/{container}, the kubelet's
// ContainerCheckpoint API: CRIU through the runtime), reports each outcome in the
// NodeHealth's status, and removes an archive once its entry is gone (the scene released,
// expired or deleted). The permission (nodes/checkpoint) is the agent's, for the kubelet
// of its own node, and never `sickbay serve`'s.
import https from 'node:https';
import type { RequestOptions } from 'node:https';
import { readFileSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CheckpointSettings } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { type CheckpointRecord, type CheckpointRequest, checkpointKey, MAX_CHECKPOINTS } from '../core/nodehealth.js';
import { errorText } from '../kube/errors.js';
import type { ApiAccess } from '../kube/rest.js';

/** The agent's checkpoint settings, as the configuration declares them. */
export type CheckpointOptions = CheckpointSettings;

export interface CheckpointCounters {
  taken: number;
  failed: number;
  removed: number;
}

/** The kubelet's answer: the archive's path on the node. */
export function archiveOf(body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error(`the kubelet's answer is not JSON: ${body.slice(0, 200)}`);
  }
  const items = (parsed as { items?: unknown })?.items;
  if (!Array.isArray(items) || typeof items[0] !== 'string' || !items[0]) throw new Error(`the kubelet named no archive: ${body.slice(0, 200)}`);
  return items[0];
}

/** What a kubelet's refusal means for the person reading the pod's annotation. */
export function kubeletRefusal(code: number, body: string): string {
  const text = body.trim().slice(0, 300);
  switch (code) {
    case 401:
      return `the kubelet did not accept the agent's credentials (HTTP 401): ${text}`;
    case 403:
      return `the agent may not checkpoint on this node (HTTP 403: it needs create on nodes/checkpoint; the chart grants it with agent.checkpoints.enabled): ${text}`;
    case 404:
      return `the kubelet has no checkpoint API or no such container (HTTP 404; the ContainerCheckpoint feature gate, on by default since Kubernetes 1.30): ${text}`;
    default:
      return /not implemented|unimplemented/i.test(text)
        ? `the container runtime cannot checkpoint (HTTP ${code}; containerd 2.0+ or CRI-O with CRIU is needed): ${text}`
        : `the kubelet refused the checkpoint (HTTP ${code}): ${text}`;
  }
}

/** An archive the kubelet wrote in `dir` (checkpoint-<pod>_<namespace>-<container>-<time>.tar), and nothing else. */
export function isArchiveIn(archive: string, dir: string): boolean {
  if (!dir || !path.isAbsolute(archive)) return false;
  const resolved = path.resolve(archive);
  return path.dirname(resolved) === path.resolve(dir) && /^checkpoint-[^/]+\.tar$/.test(path.basename(resolved));
}

export class Checkpointer {
  private readonly records = new Map<string, CheckpointRecord>();
  private readonly inFlight = new Set<string>();
  private queue: CheckpointRequest[] = [];
  private working?: Promise<void>;
  private wanted = new Set<string>();
  readonly counters: CheckpointCounters = { taken: 0, failed: 0, removed: 0 };

  constructor(
    private readonly access: ApiAccess,
    private readonly o: CheckpointOptions,
    private readonly log: Logger,
    /** Called when the records changed (the agent then writes its status). */
    private readonly changed: () => void,
  ) {}

  /** The records a restarted agent finds in its NodeHealth's status: not taken again, removed when withdrawn. */
  restore(records: CheckpointRecord[] | undefined) {
    for (const r of records ?? []) if (!this.records.has(checkpointKey(r))) this.records.set(checkpointKey(r), r);
  }

  /** The records, for the NodeHealth's status. */
  list(): CheckpointRecord[] {
    return [...this.records.values()].slice(-MAX_CHECKPOINTS);
  }

  /** Follows the requests: takes the new ones, one at a time; removes the archives of withdrawn ones. */
  sync(requests: CheckpointRequest[]) {
    this.wanted = new Set(requests.map(checkpointKey));
    let dropped = false;
    for (const [key, record] of this.records) {
      if (this.wanted.has(key)) continue;
      this.records.delete(key);
      dropped = true;
      if (record.archive) void this.remove(record.archive);
    }
    for (const r of requests) {
      const key = checkpointKey(r);
      if (this.records.has(key) || this.inFlight.has(key) || this.queue.some((q) => checkpointKey(q) === key)) continue;
      this.queue.push(r);
    }
    this.queue = this.queue.filter((q) => this.wanted.has(checkpointKey(q)));
    if (dropped) this.changed();
    if (!this.working && this.queue.length) this.working = this.work().finally(() => (this.working = undefined));
  }

  /** Waits for the checkpoint in progress (the agent's stop). */
  async idle(): Promise<void> {
    while (this.working) await this.working;
  }

  private async work() {
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      const key = checkpointKey(next);
      this.inFlight.add(key);
      const record = await this.take(next);
      this.inFlight.delete(key);
      if (!this.wanted.has(key)) {
        // Withdrawn while it was being taken: nothing to keep.
        if (record.archive) await this.remove(record.archive);
        continue;
      }
      this.records.set(key, record);
      this.changed();
    }
  }

  private async take(r: CheckpointRequest): Promise<CheckpointRecord> {
    const base = { uid: r.uid, container: r.container };
    const at = () => new Date().toISOString();
    if (!this.o.kubeletApi) {
      this.counters.failed++;
      return { ...base, status: 'failed', message: "checkpoints are off on this node's agent (SICKBAY_AGENT_KUBELET_API is not set; the chart sets it with agent.checkpoints.enabled)", at: at() };
    }
    const started = Date.now();
    try {
      const archive = await this.post(r);
      const bytes = await stat(archive).then(
        (s) => s.size,
        () => undefined, // the kubelet's folder is not mounted into this agent
      );
      const durationMs = Date.now() - started;
      this.counters.taken++;
      this.log.info('checkpoint taken', { pod: `${r.namespace}/${r.pod}`, container: r.container, archive, bytes, durationMs });
      return { ...base, status: 'ok', archive, ...(bytes !== undefined ? { bytes } : {}), durationMs, at: at() };
    } catch (err) {
      this.counters.failed++;
      const message = errorText(err).slice(0, 1000);
      this.log.warn('checkpoint failed', { pod: `${r.namespace}/${r.pod}`, container: r.container, error: message });
      return { ...base, status: 'failed', durationMs: Date.now() - started, message, at: at() };
    }
  }

  /** One POST to the kubelet, with the agent's own credentials. */
  private async post(r: CheckpointRequest): Promise<string> {
    const seconds = Math.max(1, Math.ceil(this.o.timeoutMs / 1000));
    const url = new URL(`/checkpoint/${encodeURIComponent(r.namespace)}/${encodeURIComponent(r.pod)}/${encodeURIComponent(r.container)}`, this.o.kubeletApi);
    url.searchParams.set('timeout', String(seconds));
    const opts: RequestOptions = { method: 'POST', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.o.timeoutMs + 10_000) };
    await this.access.applyToHTTPSOptions(opts);
    if (this.o.kubeletCaFile) opts.ca = readFileSync(this.o.kubeletCaFile);
    if (this.o.kubeletInsecure) opts.rejectUnauthorized = false;
    const { code, body } = await new Promise<{ code: number; body: string }>((resolve, reject) => {
      const req = https.request(url, opts, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text = (text + c).slice(0, 64 * 1024)));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      });
      req.on('error', (err) => reject(new Error(`the kubelet at ${url.origin}: ${err.message}`, { cause: err })));
      req.end();
    });
    if (code < 200 || code > 299) throw new Error(kubeletRefusal(code, body));
    return archiveOf(body);
  }

  private async remove(archive: string) {
    if (!isArchiveIn(archive, this.o.archiveDir)) {
      this.log.warn('not removing a checkpoint archive outside the kubelet checkpoints folder', { archive, folder: this.o.archiveDir });
      return;
    }
    try {
      await rm(archive, { force: true });
      this.counters.removed++;
      this.log.info('checkpoint archive removed: its scene is gone', { archive });
    } catch (err) {
      this.log.warn('cannot remove a checkpoint archive whose scene is gone', { archive, error: errorText(err) });
    }
  }
}
