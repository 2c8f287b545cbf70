// What every sickbay controller holds: the shared caches, the configuration, its logger
// and metrics, a core API client and an Event recorder. Controllers run on the leader only.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.js';
import { EventRecorder } from '../kube/events.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ClusterCache } from './cluster-cache.js';

export interface ControllerDeps {
  kc: KubeConfig;
  cache: ClusterCache;
  config: Config;
  log: Logger;
  metrics: Metrics;
}

export abstract class ControllerBase {
  protected readonly cache: ClusterCache;
  protected readonly config: Config;
  protected readonly log: Logger;
  protected readonly metrics: Metrics;
  protected readonly core: CoreV1Api;
  protected readonly events: EventRecorder;

  constructor(deps: ControllerDeps) {
    ({ cache: this.cache, config: this.config, log: this.log, metrics: this.metrics } = deps);
    this.core = deps.kc.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(this.core, 'sickbay', deps.log);
    this.events.dryRun = deps.config.dryRun;
  }
}
