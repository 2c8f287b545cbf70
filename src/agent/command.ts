// `sickbay agent --node-name N`: the node agent, plus a small plain-HTTP endpoint for the
// DaemonSet's probes and Prometheus (GET /healthz: the check loop is turning; GET /metrics).
import http from 'node:http';
import { agentMetricsText, TEXT_FORMAT } from '../core/agent-metrics.js';
import type { AgentConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { ApiAccess } from '../kube/rest.js';
import { apiServerTarget, NodeAgent } from './agent.js';

export interface AgentHandle {
  agent: NodeAgent;
  port?: number;
  stop(): Promise<void>;
}

export async function runAgent(a: AgentConfig, kc: ApiAccess, log: Logger, o: { nodeName: string; version?: string }): Promise<AgentHandle> {
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
      checkpoints: a.checkpoints,
    },
    log,
  );
  const abort = new AbortController();
  const running = agent.run(abort.signal);
  let server: http.Server | undefined;
  if (a.port > 0) {
    server = createAgentServer((req, res) => {
      const lastRound = Date.now() - agent.lastRoundAt;
      if (req.url === '/healthz') {
        // The loop must have turned recently; an agent that cannot reach the API server is still alive.
        const ok = lastRound < Math.max(10_000, a.checkIntervalMs * 10);
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok, node: o.nodeName, checks: agent.checkStates(), heartbeats: agent.stats }));
        return;
      }
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': TEXT_FORMAT });
        res.end(agentMetricsText({ ...agent.stats, checks: agent.checkStates(), checkpoints: agent.checkpointer.counters }));
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

/**
 * The agent's port serves the kubelet's probe and Prometheus, on every node: a client
 * that holds connections open or sends slowly must not starve them, nor grow the agent.
 * Headers and the whole request within 5 s, idle keep-alive connections closed after
 * 5 s (Prometheus scrapes every 15-60 s and reconnects cheaply), at most 64 at once.
 */
export const AGENT_SERVER_LIMITS = { requestTimeoutMs: 5_000, keepAliveMs: 5_000, maxConnections: 64 };

export function createAgentServer(handler: http.RequestListener): http.Server {
  const server = http.createServer(
    {
      requestTimeout: AGENT_SERVER_LIMITS.requestTimeoutMs,
      headersTimeout: AGENT_SERVER_LIMITS.requestTimeoutMs,
      keepAliveTimeout: AGENT_SERVER_LIMITS.keepAliveMs,
      // How often Node looks for requests past their timeout (30 s by default): a slow
      // client would otherwise hold its connection up to 35 s.
      connectionsCheckingInterval: 1_000,
    },
    handler,
  );
  server.maxConnections = AGENT_SERVER_LIMITS.maxConnections;
  return server;
}
