// Assembles what `sickbay serve` runs besides the webhook: the informer caches (every
// replica), the Lease elector, and the controllers (the leader only, once per term). The
// manager (src/manager/) starts them in that order.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { type KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../core/config.js';
import { alertsHandler } from '../quarantine/alerts.js';
import { ClusterCache } from '../kube/cluster-cache.js';
import { PodIsolationController } from '../quarantine/pod-isolation-controller.js';
import { SceneArchiver } from '../archive/archiver.js';
import { withConnectionReuse } from '../kube/connection-reuse.js';
import { LeaseElector } from '../kube/lease-elector.js';
import type { EventGate, EventSink } from '../kube/events.js';
import { NodeController } from '../nodes/node-controller.js';
import { UninjectedPodsController } from '../webhook/uninjected-pods.js';
import { NeverReadyController } from '../never-ready/never-ready-controller.js';
import { avoidNodesDecorator } from '../never-ready/avoid-nodes-decorator.js';
import { DiagnosticsStep } from '../diagnostics/diagnostics-step.js';
import { CheckpointStep } from '../checkpoint/checkpoint-step.js';
import { RegistryStep } from '../registry/registry-step.js';
import { ZooKeeperRegistry } from '../registry/zookeeper-registry.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { Runnable } from './manager.js';
import type { Components } from './serve.js';
import { inOrder, type PostQuarantineStep } from '../kube/steps.js';
import { errorDetail } from '../kube/errors.js';

export interface Controller {
  name: string;
  run(signal: AbortSignal): Promise<void>;
}

export interface ComponentOverrides {
  steps?: PostQuarantineStep[];
}

export function buildComponents(config: Config, kubeConfig: KubeConfig, ctx: { metrics: Metrics; log: Logger; eventGate: EventGate }, overrides: ComponentOverrides = {}): Components {
  const { metrics, log } = ctx;
  const eventSink: EventSink = { gate: ctx.eventGate, host: config.identity.host };
  const kc = withConnectionReuse(kubeConfig);
  const cache = new ClusterCache(kc, { resyncMs: config.resyncMs, ownNamespace: config.identity.namespace, log: log.child({ component: 'informer' }), metrics });
  // Each leadership term builds its controllers, registry clients and post-quarantine
  // steps anew (queues, per-term state, handlers on the shared caches, registry watches):
  // a replica that loses the lease and wins it again starts as a new leader would.
  let leading: () => boolean = () => true;
  const runControllers = async (term: AbortSignal) => {
    const registries = config.registries.map((r) => new ZooKeeperRegistry({ ...r, onSessionExpired: () => (metrics.registrySessionExpiries.inc({ registry: r.name }), log.warn('ZooKeeper expired the registry session; its watches are re-armed on a new one', { registry: r.name })) }));
    term.addEventListener('abort', () => {
      for (const r of registries) r.close();
    });
    // One registry step for quarantined pods and for the pods of isolated nodes.
    const registryStep = registries.length ? new RegistryStep({ kc, log: log.child({ component: 'registry' }), metrics, eventSink }, registries) : undefined;
    // The checkpoint, then the dumps (which change what the process holds); the registry
    // step beside them, as soon as the pod is out of service.
    const checkpointStep = new CheckpointStep(
      { kc, log: log.child({ component: 'checkpoint' }), metrics, eventSink },
      { timeoutMs: config.checkpoint.timeoutMs, namespaceAnnotations: (name) => cache.namespaces.get(name)?.metadata?.annotations },
    );
    const scene: PostQuarantineStep[] = [
      checkpointStep,
      ...(config.diagnostics.enabled ? [new DiagnosticsStep({ kc, log: log.child({ component: 'diagnostics' }), metrics, eventSink }, { timeoutMs: config.diagnostics.timeoutMs })] : []),
    ];
    const steps: PostQuarantineStep[] = overrides.steps ?? [...(registryStep ? [registryStep] : []), inOrder(scene)];
    const deps = <C>(component: string, part: C) => ({ kc, cache, config: part, log: log.child({ component }), metrics, eventSink, term, leading: () => !term.aborted && leading() });
    const controllers: Controller[] = [];
    const isolation = new PodIsolationController(deps('pod-isolation', config.quarantine), steps, config.archive ? new SceneArchiver(kc, config.archive, config.identity.namespace) : undefined);
    controllers.push({ name: 'pod-isolation', run: (s) => isolation.run(s) });
    const neverReady = new NeverReadyController(deps('never-ready', config.neverReady));
    controllers.push({ name: 'never-ready', run: (s) => neverReady.run(s) });
    const uninjected = new UninjectedPodsController(deps('repair', config.repair));
    controllers.push({ name: 'uninjected-pods', run: (s) => uninjected.run(s) });
    if (config.node.enabled) {
      const nodes = new NodeController(deps('node-controller', config.node), overrides.steps ? undefined : registryStep);
      controllers.push({ name: 'node-controller', run: (s) => nodes.run(s) });
    }
    // A controller that fails, or returns while the term goes on, fails this runnable: the
    // manager ends the term (the Lease resigned), so no replica leads without it.
    await Promise.all(
      controllers.map((c) =>
        c.run(term).then(
          () => {
            if (!term.aborted) throw new Error(`${c.name} returned while still leading`);
          },
          (err) => {
            if (!term.aborted) throw new Error(`${c.name}: ${errorDetail(err)}`, { cause: err });
            log.warn('controller stopped with an error as its term ended', { controller: c.name, error: errorDetail(err) });
          },
        ),
      ),
    );
  };

  const runnables: Runnable[] = [
    { name: 'informers', needsLeadership: false, start: (s) => cache.run(s).then(() => undefined), notReadyReason: () => cache.notSynced() },
  ];
  let elector: LeaseElector | undefined;
  if (config.leaderElection.enabled) {
    const identity = config.identity.podName || `${hostname()}-${randomBytes(4).toString('hex')}`;
    elector = new LeaseElector(kc, {
      namespace: config.identity.namespace,
      name: config.leaderElection.leaseName,
      identity,
      leaseDurationMs: config.leaderElection.leaseDurationMs,
      renewDeadlineMs: config.leaderElection.renewDeadlineMs,
      retryPeriodMs: config.leaderElection.retryPeriodMs,
      log: log.child({ component: 'leader-election' }),
      onLeadershipChange: (now) => metrics.isLeader.set(now ? 1 : 0),
    });
    const e = elector;
    leading = () => e.isLeader();
  } else {
    metrics.isLeader.set(1);
  }
  runnables.push({ name: 'controllers', needsLeadership: true, start: runControllers });
  return { runnables, elector, waitForCaches: (signal) => cache.waitForSync(signal), decoratePod: avoidNodesDecorator(cache, config.neverReady.avoidNodesTtlMs), namespaceOf: (name) => cache.namespaces.get(name)?.metadata, nodes: cache.nodes, alerts: alertsHandler(kc, cache, { ...config.alerts, log: log.child({ component: 'alerts' }) }) };
}
