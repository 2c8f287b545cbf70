// Node agents run in the test process, one per kwok node, each with a prepared /proc
// holding its "containerd": checks every second, a heartbeat every `heartbeatMs`.
import type { KubeConfig } from '@kubernetes/client-node';
import { NodeAgent } from '../../src/agent/agent.js';
import { parseProcessSpecs } from '../../src/core/agent-settings.js';
import type { Logger } from '../../src/core/log.js';
import type { ApiAccess } from '../../src/kube/rest.js';
import { procRoot, type ProcRoot } from './proc-root.js';

export class SimulatedAgents {
  private readonly agents = new Map<string, { proc: ProcRoot; abort: AbortController; running: Promise<void> }>();

  constructor(
    private readonly access: ApiAccess | KubeConfig,
    private readonly log: Logger,
    private readonly heartbeatMs = 1000,
  ) {}

  start(node: string) {
    const proc = procRoot();
    proc.add(100, 'containerd');
    const agent = new NodeAgent(
      this.access,
      { nodeName: node, checks: ['conditions', 'processes'], checkIntervalMs: 1000, heartbeatIntervalMs: this.heartbeatMs, failureThreshold: 3, kubeletUrl: 'http://127.0.0.1:1/healthz', networkTargets: [], processes: parseProcessSpecs('containerd'), procRoot: proc.root },
      this.log.child({ component: 'agent', node }),
    );
    const abort = new AbortController();
    this.agents.set(node, { proc, abort, running: agent.run(abort.signal) });
  }

  /** Stops the node's agent (its last heartbeat written) and removes its /proc. */
  async stop(node: string) {
    const a = this.agents.get(node)!;
    a.abort.abort();
    await a.running;
    a.proc.dispose();
    this.agents.delete(node);
  }

  /** The /proc the node's agent reads (a test removes or adds its processes). */
  proc(node: string): ProcRoot {
    return this.agents.get(node)!.proc;
  }

  nodes(): string[] {
    return [...this.agents.keys()];
  }

  stopAll() {
    return Promise.all(this.nodes().map((n) => this.stop(n)));
  }
}
