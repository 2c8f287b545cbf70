// `sickbay agent --node-name N`: checks one node every second and reports to the
// node's NodeHealth: a heartbeat every 10 s, and at once when a check changes state.
// It never acts on the node itself; the node controller decides.
import http from 'node:http';
import net from 'node:net';
import type { V1Node } from '@kubernetes/client-node';
import { codeOf, errorText } from '../kube/errors.js';
import { type ApiAccess, restCall } from '../kube/rest.js';
import { Informer } from '../kube/informer.js';
import type { Logger } from '../core/log.js';
import { sleep, withDeadline } from '../util/wait.js';
import type { CheckName, ProcessSpec } from '../core/agent-settings.js';
import type { AgentConfig } from '../core/config.js';
import { type CheckResult, CheckTracker, conditionsCheck, ProcessWatch } from './checks.js';
import { runtimeLayout } from './runtime-layout.js';
import { Checkpointer, type CheckpointOptions } from './checkpoints.js';
import { healthCondition, nodeProblemCondition, NODEHEALTH_GROUP, NODEHEALTH_KIND, NODEHEALTH_PLURAL, NODEHEALTH_VERSION, type NodeHealth, type NodeHealthStatus } from '../core/nodehealth.js';

/**
 * What the agent runs by: its part of the configuration (AgentConfig, declared once in
 * core/config.ts), the node it runs on and its version; checkpoints optional (without a
 * kubelet API the agent still answers each request, with why it cannot take it).
 */
export type AgentOptions = Pick<AgentConfig, 'checks' | 'checkIntervalMs' | 'heartbeatIntervalMs' | 'failureThreshold' | 'pressureAfterMs' | 'kubeletUrl' | 'networkTargets' | 'processes' | 'procRoot' | 'nodeCondition'> & {
  nodeName: string;
  version?: string;
  checkpoints?: CheckpointOptions;
};

export interface AgentStats {
  heartbeats: number;
  heartbeatErrors: number;
  lastHeartbeat?: Date;
}

const HEALTHS = `/apis/${NODEHEALTH_GROUP}/${NODEHEALTH_VERSION}/${NODEHEALTH_PLURAL}`;
/** Each API call is aborted after this (the request itself: a heartbeat never lands late). */
const API_TIMEOUT_MS = 10_000;
const MERGE_PATCH = 'application/merge-patch+json';
/** For the Node's status: its conditions merge by type, so the kubelet's stay as they are. */
const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';

export class NodeAgent {
  /** The last Node condition write failure (logged once until it changes). */
  private nodeConditionError?: string;
  private readonly trackers: Map<CheckName, CheckTracker>;
  private processWatch?: ProcessWatch;
  /** The runtime layout the process watch follows (processes `auto`). */
  private layoutKey?: string;
  private readonly node?: Informer<V1Node>;
  /** Its own NodeHealth: the checkpoints asked of it (spec). */
  private readonly health: Informer<NodeHealth>;
  readonly checkpointer: Checkpointer;
  private checkpointsRestored = false;
  private healthy = true;
  private since = new Date();
  private sinceKnown = false;
  private exists = false;
  private lastBeat = 0;
  private writing?: Promise<void>;
  private again = false;
  readonly stats: AgentStats = { heartbeats: 0, heartbeatErrors: 0 };
  /** When the last round of checks finished (ms). */
  lastRoundAt = Date.now();

  constructor(
    private readonly kc: ApiAccess,
    readonly o: AgentOptions,
    private readonly log: Logger,
  ) {
    this.trackers = new Map(o.checks.map((c) => [c, new CheckTracker(c, o.failureThreshold)]));
    if (o.processes !== 'auto') this.processWatch = new ProcessWatch(o.procRoot, o.processes);
    if (o.checks.includes('conditions') || (o.processes === 'auto' && o.checks.includes('processes'))) {
      this.node = new Informer<V1Node>(kc, { resource: 'node', path: '/api/v1/nodes', fieldSelector: `metadata.name=${o.nodeName}`, log });
    }
    this.checkpointer = new Checkpointer(kc, o.checkpoints ?? { kubeletApi: '', kubeletCaFile: '', kubeletInsecure: false, timeoutMs: 120_000, archiveDir: '' }, log, () => this.heartbeat());
    this.health = new Informer<NodeHealth>(kc, { resource: 'nodehealth', path: HEALTHS, fieldSelector: `metadata.name=${o.nodeName}`, log });
    const follow = (h: NodeHealth) => {
      if (!this.checkpointsRestored) {
        // A restarted agent knows what it took before: not taken again, removed when withdrawn.
        this.checkpointer.restore(h.status?.checkpoints);
        this.checkpointsRestored = true;
      }
      this.checkpointer.sync(h.spec?.checkpoints ?? []);
    };
    this.health.on({ add: follow, update: follow });
  }

  /** Checks and heartbeats until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    void this.node?.run(signal).catch((err) => this.log.error('node watch stopped', { error: errorText(err) }));
    void this.health.run(signal).catch((err) => this.log.error('NodeHealth watch stopped', { error: errorText(err) }));
    while (!signal.aborted) {
      const started = Date.now();
      await this.checkOnce();
      await sleep(Math.max(0, this.o.checkIntervalMs - (Date.now() - started)), signal);
    }
    await this.checkpointer.idle();
    await this.writing;
  }

  /** One round of checks; writes a heartbeat if anything changed or one is due. */
  async checkOnce(): Promise<void> {
    const budget = Math.max(200, Math.floor(this.o.checkIntervalMs * 0.8));
    const results = await Promise.all(
      this.o.checks.map(async (name): Promise<[CheckName, CheckResult]> => {
        try {
          return [name, await withDeadline(this.runCheck(name, budget), budget, `${name} check`)];
        } catch (err) {
          return [name, { ok: false, message: errorText(err) }];
        }
      }),
    );
    const now = new Date();
    let changed = false;
    for (const [name, result] of results) {
      if (this.trackers.get(name)!.record(result, now)) {
        changed = true;
        const s = this.trackers.get(name)!.state;
        this.log.info(s.ok ? 'check recovered' : 'check failing', { node: this.o.nodeName, check: name, message: s.message });
      }
    }
    const healthy = [...this.trackers.values()].every((t) => t.state.ok);
    if (healthy !== this.healthy) {
      this.healthy = healthy;
      this.since = now;
      this.sinceKnown = true;
    }
    if (changed || Date.now() - this.lastBeat >= this.o.heartbeatIntervalMs) this.heartbeat();
    this.lastRoundAt = Date.now();
  }

  checkStates() {
    return [...this.trackers.values()].map((t) => ({ ...t.state }));
  }

  private runCheck(name: CheckName, timeoutMs: number): Promise<CheckResult> {
    switch (name) {
      case 'kubelet':
        return httpHealth(this.o.kubeletUrl, timeoutMs);
      case 'conditions':
        return Promise.resolve(this.node!.hasSynced() ? conditionsCheck(this.node!.get(this.o.nodeName), Date.now(), this.o.pressureAfterMs ?? 0) : { ok: true, message: 'waiting for the Node object' });
      case 'network':
        return reachable(this.o.networkTargets, timeoutMs);
      case 'processes':
        return Promise.resolve(this.processesCheck());
    }
  }

  /** The processes check; with `auto`, of the processes the Node says it runs. */
  private processesCheck(): CheckResult {
    if (this.o.processes !== 'auto') return this.processWatch!.check();
    if (!this.node!.hasSynced()) return { ok: true, message: 'waiting for the Node object' };
    const layout = runtimeLayout(this.node!.get(this.o.nodeName)?.status?.nodeInfo);
    if (layout.key !== this.layoutKey) {
      this.layoutKey = layout.key;
      this.processWatch = layout.known ? new ProcessWatch(this.o.procRoot, layout.specs) : undefined;
      if (layout.known) this.log.info('watching the processes of the node runtime', { node: this.o.nodeName, layout: layout.description });
      else this.log.warn('unknown node runtime: processes not checked', { node: this.o.nodeName, layout: layout.description });
    }
    if (!layout.known) return { ok: true, message: layout.description };
    const result = this.processWatch!.check();
    return { ...result, message: `${result.message} (${layout.description})` };
  }

  /** Writes the heartbeat now, or right after the write in flight. */
  private heartbeat() {
    if (this.writing) {
      this.again = true;
      return;
    }
    this.lastBeat = Date.now();
    this.writing = this.write()
      .then(() => {
        this.stats.heartbeats++;
        this.stats.lastHeartbeat = new Date();
      })
      .catch((err) => {
        this.stats.heartbeatErrors++;
        this.lastBeat = 0; // try again on the next round
        this.log.warn('heartbeat failed; retrying', { node: this.o.nodeName, error: errorText(err) });
      })
      .finally(() => {
        this.writing = undefined;
        if (this.again) {
          this.again = false;
          this.heartbeat();
        }
      });
  }

  private status(): NodeHealthStatus {
    const checks = this.checkStates();
    return {
      healthy: this.healthy,
      failing: checks
        .filter((c) => !c.ok)
        .map((c) => c.name)
        .join(','),
      heartbeatTime: new Date().toISOString(),
      heartbeatIntervalSeconds: this.o.heartbeatIntervalMs / 1000,
      since: this.since.toISOString(),
      checks: checks.map((c) => ({ ...c, lastTransitionTime: c.lastTransitionTime.toISOString() })),
      conditions: [healthCondition(this.healthy, this.since, checks)],
      ...(this.o.version ? { agentVersion: this.o.version } : {}),
      // Only once the requests were read: a status written before would drop the records
      // of a restarted agent.
      ...(this.checkpointsRestored ? { checkpoints: this.checkpointer.list() } : {}),
    };
  }

  private async write(): Promise<void> {
    const name = this.o.nodeName;
    if (!this.exists) {
      const current = await restCall<NodeHealth>(this.kc, { method: 'GET', path: `${HEALTHS}/${encodeURIComponent(name)}`, timeoutMs: API_TIMEOUT_MS }).catch((err) => {
        if (codeOf(err) === 404) return undefined;
        throw err;
      });
      if (!current) {
        const owner = this.node?.get(name)?.metadata;
        const body: NodeHealth = {
          apiVersion: `${NODEHEALTH_GROUP}/${NODEHEALTH_VERSION}`,
          kind: NODEHEALTH_KIND,
          // Deleted with its Node.
          metadata: { name, ...(owner?.uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: owner.uid }] } : {}) },
          spec: { nodeName: name },
        };
        await restCall(this.kc, { method: 'POST', path: HEALTHS, body, timeoutMs: API_TIMEOUT_MS }).catch((err) => {
          if (codeOf(err) !== 409) throw err;
        });
      } else if (!this.sinceKnown && current.status?.healthy === this.healthy && current.status.since) {
        // A restarted agent that finds the same verdict keeps the time it began.
        this.since = new Date(current.status.since);
      }
      this.exists = true;
      this.sinceKnown = true;
    }
    const status = this.status();
    try {
      await restCall(this.kc, { method: 'PATCH', path: `${HEALTHS}/${encodeURIComponent(name)}/status`, body: { status }, contentType: MERGE_PATCH, timeoutMs: API_TIMEOUT_MS });
    } catch (err) {
      if (codeOf(err) === 404) this.exists = false; // deleted under us: create it again next time
      throw err;
    }
    if (this.o.nodeCondition) await this.writeNodeCondition(this.o.nodeCondition, status);
  }

  /**
   * The Node condition, by a strategic merge patch of the Node's status: the list merges
   * by type, so the kubelet's and others' conditions stay as they are. A failure is
   * logged (once per kind of failure) and never stops the heartbeat.
   */
  private async writeNodeCondition(type: string, status: NodeHealthStatus) {
    const condition = nodeProblemCondition(type, status.healthy, this.since, status.checks, new Date());
    try {
      await restCall(this.kc, { method: 'PATCH', path: `/api/v1/nodes/${encodeURIComponent(this.o.nodeName)}/status`, body: { status: { conditions: [condition] } }, contentType: STRATEGIC_MERGE_PATCH, timeoutMs: API_TIMEOUT_MS });
      this.nodeConditionError = undefined;
    } catch (err) {
      const text = errorText(err);
      if (text !== this.nodeConditionError) this.log.warn('cannot write the Node condition; the NodeHealth heartbeat goes on', { node: this.o.nodeName, condition: type, error: text });
      this.nodeConditionError = text;
    }
  }
}

function httpHealth(url: string, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body = (body + c).slice(0, 200)));
      res.on('end', () => {
        const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
        resolve({ ok, message: ok ? `${url}: ${body.trim() || res.statusCode}` : `${url}: HTTP ${res.statusCode} ${body.trim()}`.trim() });
      });
      res.on('error', (err) => resolve({ ok: false, message: `${url}: ${err.message}` }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, message: `${url}: ${err.message}` }));
  });
}

function connect(target: string, timeoutMs: number): Promise<string | undefined> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
  if (!m) return Promise.resolve(`${target}: not host:port`);
  return new Promise((resolve) => {
    const socket = net.connect({ host: m[1], port: Number(m[2]), timeout: timeoutMs });
    const done = (problem?: string) => {
      socket.destroy();
      resolve(problem);
    };
    socket.once('connect', () => done());
    socket.once('timeout', () => done(`${target}: no connection within ${timeoutMs} ms`));
    socket.once('error', (err) => done(`${target}: ${err.message}`));
  });
}

async function reachable(targets: string[], timeoutMs: number): Promise<CheckResult> {
  const problems = (await Promise.all(targets.map((t) => connect(t, timeoutMs)))).filter(Boolean);
  return problems.length ? { ok: false, message: problems.join('; ') } : { ok: true, message: `reachable: ${targets.join(', ')}` };
}

/** host:port of the API server a kubeconfig points at: the agent's default network target. */
export function apiServerTarget(kc: ApiAccess): string | undefined {
  const server = kc.getCurrentCluster()?.server;
  if (!server) return undefined;
  const url = new URL(server);
  // hostname keeps an IPv6 address in brackets.
  return `${url.hostname}:${url.port || (url.protocol === 'http:' ? 80 : 443)}`;
}
