// What every sickbay controller holds: the shared caches, the configuration, its logger
// and metrics, a core API client and an Event recorder. Controllers run on the leader only,
// and each leadership term builds them anew.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { EventRecorder, type EventSink } from './events.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { ClusterCache } from './cluster-cache.js';

/** What a controller receives; `config` is its own part of the configuration, nothing more. */
export interface ControllerDeps<C extends { dryRun: boolean }> {
  kc: KubeConfig;
  cache: ClusterCache;
  config: C;
  log: Logger;
  metrics: Metrics;
  /** Where its Events go (the process's one gate, the reporting instance). */
  eventSink: EventSink;
  /**
   * This leadership term: aborts when it ends. Handlers a controller adds to the shared
   * caches are removed then, so the next term starts with fresh controllers.
   */
  term: AbortSignal;
  /** Whether this replica may still act: checked before every destructive action. */
  leading: () => boolean;
}

export abstract class ControllerBase<C extends { dryRun: boolean }> {
  protected readonly kc: KubeConfig;
  protected readonly cache: ClusterCache;
  protected readonly config: C;
  protected readonly log: Logger;
  protected readonly metrics: Metrics;
  protected readonly core: CoreV1Api;
  protected readonly events: EventRecorder;
  protected readonly term: AbortSignal;
  protected readonly leading: () => boolean;

  constructor(deps: ControllerDeps<C>) {
    ({ kc: this.kc, cache: this.cache, config: this.config, log: this.log, metrics: this.metrics, term: this.term, leading: this.leading } = deps);
    this.core = deps.kc.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(this.core, { ...deps.eventSink, log: deps.log });
    this.events.dryRun = deps.config.dryRun;
  }
}
