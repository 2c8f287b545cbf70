// What every sickbay controller holds: the shared caches, the configuration, its logger
// and metrics, a core API client and an Event recorder. Controllers run on the leader only,
// and each leadership term builds them anew.
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
  /**
   * This leadership term: aborts when it ends. Handlers a controller adds to the shared
   * caches are removed then, so the next term starts with fresh controllers.
   */
  term: AbortSignal;
  /** Whether this replica may still act: checked before every destructive action. */
  leading: () => boolean;
}

export abstract class ControllerBase {
  protected readonly kc: KubeConfig;
  protected readonly cache: ClusterCache;
  protected readonly config: Config;
  protected readonly log: Logger;
  protected readonly metrics: Metrics;
  protected readonly core: CoreV1Api;
  protected readonly events: EventRecorder;
  protected readonly term: AbortSignal;
  protected readonly leading: () => boolean;

  constructor(deps: ControllerDeps) {
    ({ kc: this.kc, cache: this.cache, config: this.config, log: this.log, metrics: this.metrics, term: this.term, leading: this.leading } = deps);
    this.core = deps.kc.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(this.core, 'sickbay', deps.log);
    this.events.dryRun = deps.config.dryRun;
  }
}
