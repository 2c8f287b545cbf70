// Assembles the controllers `sickbay serve` runs. Filled in as controllers land.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Runnable } from './serve.js';

export function buildRunnables(_config: Config, _kc: KubeConfig, _ctx: { metrics: Metrics; log: Logger }): Runnable[] {
  return [];
}
