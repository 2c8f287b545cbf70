// `sickbay agent --node-name N`: the node agent, plus a small plain-HTTP endpoint for the
// DaemonSet's probes and Prometheus (GET /healthz: the check loop is turning; GET /metrics).
import http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { AgentMetrics } from '../core/metrics.js';
import type { AgentConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { apiServerTarget, NodeAgent } from './agent.js';

export interface AgentHandle {
  agent: NodeAgent;
  port?: number;
  stop(): Promise<void>;
}

export async function runAgent(a: AgentConfig, kc: KubeConfig, log: Logger, o: { nodeName: string; version?: string }): Promise<AgentHandle> {
  const targets = a.networkTargets.length ? a.networkTargets : [apiServerTarget(kc)].filter((t): t is string => !!t);
  const agent = new NodeAgent(
    kc,
    {
      nodeName: o.nodeName,
      checks: a.checks,
      checkIntervalMs: a.checkIntervalMs,
      heartbeatIntervalMs: a.heartbeatIntervalMs,
      failureThreshold: a.failureThreshold,
      kubeletUrl: a.kubeletUrl,
      networkTargets: targets,
      processes: a.processes,
      procRoot: a.procRoot,
      version: o.version,
      nodeCondition: a.nodeCondition,
    },
    log,
  );
  const abort = new AbortController();
  const running = agent.run(abort.signal);
  let server: http.Server | undefined;
  if (a.port > 0) {
    const { registry, heartbeats: beats, checkFailing: failing } = new AgentMetrics();
    server = http.createServer((req, res) => {
      const lastRound = Date.now() - agent.lastRoundAt;
      if (req.url === '/healthz') {
        // The loop must have turned recently; an agent that cannot reach the API server is still alive.
        const ok = lastRound < Math.max(10_000, a.checkIntervalMs * 10);
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok, node: o.nodeName, checks: agent.checkStates(), heartbeats: agent.stats }));
        return;
      }
      if (req.url === '/metrics') {
        beats.reset();
        beats.inc({ result: 'ok' }, agent.stats.heartbeats);
        beats.inc({ result: 'error' }, agent.stats.heartbeatErrors);
        for (const c of agent.checkStates()) failing.set({ check: c.name }, c.ok ? 0 : 1);
        void registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        });
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      if (a.bindAddress) server!.listen(a.port, a.bindAddress, () => resolve());
      else server!.listen(a.port, () => resolve());
    });
  }
  log.info('node agent running', { node: o.nodeName, checks: a.checks, targets, processes: a.processes === 'auto' ? 'auto (from the Node)' : a.processes.map((p) => p.name + (p.optional ? '?' : '')) });
  const address = server?.address();
  return {
    agent,
    port: address && typeof address === 'object' ? address.port : undefined,
    async stop() {
      abort.abort();
      await running;
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}
