// `sickbay serve`: the webhook on every replica, the controllers on the leader.
// Start order: health endpoints and webhook first, then (when controllers run) caches
// synced, then leader-only work.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { Metrics } from '../metrics.js';
import { buildApp } from '../server/app.js';
import { HttpsServer } from '../server/https-server.js';

export interface Runnable {
  name: string;
  /** Needs the controller lease: runs only on the leader. */
  needsLeadership: boolean;
  start(signal: AbortSignal): Promise<void>;
  /** undefined once ready (caches synced), else why not. */
  notReadyReason?(): string | undefined;
}

export interface ServeHandle {
  port: number;
  metrics: Metrics;
  server: HttpsServer;
  /** Fails readiness, drains, closes: what SIGTERM does. */
  shutdown(): Promise<void>;
}

export interface ServeOptions {
  kubeConfig?: KubeConfig;
  /** Controllers and other runnables, assembled by the caller. */
  runnables?: (ctx: { metrics: Metrics; log: Logger }) => Runnable[] | Promise<Runnable[]>;
  metrics?: Metrics;
}

export async function serve(config: Config, log: Logger, opts: ServeOptions = {}): Promise<ServeHandle> {
  const metrics = opts.metrics ?? new Metrics({ defaults: true });
  const abort = new AbortController();
  let shuttingDown = false;
  const runnables = (await opts.runnables?.({ metrics, log })) ?? [];

  const app = buildApp({
    metrics,
    admission: {
      injection: { shimImage: config.shimImage, shimSource: config.shimSource },
      sickbayUsername: config.serviceAccountUsername,
      maxBodyBytes: config.maxBodyBytes,
      metrics,
      log: log.child({ component: 'webhook' }),
    },
    readiness: {
      notReadyReason() {
        if (shuttingDown) return 'shutting down';
        for (const r of runnables) {
          const why = r.notReadyReason?.();
          if (why) return `${r.name}: ${why}`;
        }
        return undefined;
      },
    },
  });
  const server = new HttpsServer({
    port: config.port,
    host: config.bindAddress,
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    drainMs: config.drainMs,
    handler: app,
    log: log.child({ component: 'https' }),
    metrics,
  });
  const port = await server.listen();
  log.info('serving', { port, tls: config.tlsCertFile });

  for (const r of runnables) {
    r.start(abort.signal).catch((err) => log.error('runnable stopped with an error', { runnable: r.name, error: err instanceof Error ? err.stack : String(err) }));
  }

  let done: Promise<void> | undefined;
  return {
    port,
    metrics,
    server,
    shutdown() {
      done ??= (async () => {
        shuttingDown = true;
        log.info('shutting down: readiness fails, draining', { drainMs: config.drainMs });
        abort.abort();
        await server.close();
        log.info('stopped');
      })();
      return done;
    },
  };
}
