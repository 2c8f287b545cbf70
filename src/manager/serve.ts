// `sickbay serve`: the webhook on every replica, the controllers on the leader.
// Start order: health endpoints and webhook first, then the manager (src/manager/):
// caches, then, once they have synced, leader-only work under the Lease.
import { setMaxListeners } from 'node:events';
import type { RequestListener } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { type AdmissionDeps, AdmissionBudget } from '../webhook/admission.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { Metrics } from '../core/metrics.js';
import { buildHandler } from './app.js';
import { HttpsServer } from '../server/https-server.js';
import { sleep } from '../util/wait.js';
import { EventGate } from '../kube/events.js';
import { errorText } from '../kube/api.js';
import { ensureServingSecret } from '../tls/serving-secret.js';
import { type Elector, Manager, type Runnable } from './manager.js';

export type { Runnable } from './manager.js';

export interface ServeHandle {
  port: number;
  metrics: Metrics;
  server: HttpsServer;
  /** Fails readiness, drains, closes: what SIGTERM does. */
  shutdown(): Promise<void>;
}

export interface Components {
  runnables: Runnable[];
  /** Campaigns for the Lease; without one, this replica leads from the start. */
  elector?: Elector;
  /** Resolves once the caches have synced (or `signal` aborts): leader-only work waits for it. */
  waitForCaches?(signal: AbortSignal): Promise<void>;
  /** POST /alerts. */
  alerts?: RequestListener;
  /** Extra pure changes to pods the webhook injects (node avoidance). */
  decoratePod?: AdmissionDeps['decoratePod'];
  /** The namespace of a pod being injected, from the informer cache (its annotations). */
  namespaceOf?: AdmissionDeps['namespaceOf'];
}

export interface ServeOptions {
  kubeConfig?: KubeConfig;
  /** Controllers, caches and the handlers that need them, assembled by the caller. */
  components?: (ctx: { metrics: Metrics; log: Logger; events: EventGate }) => Components | Promise<Components>;
  metrics?: Metrics;
}

export async function serve(config: Config, log: Logger, opts: ServeOptions = {}): Promise<ServeHandle> {
  const metrics = opts.metrics ?? new Metrics({ defaults: true });
  const abort = new AbortController();
  // Self-managed certificates made in the cluster: the files exist before the server reads them.
  const tls = config.server.tlsSecret;
  let keepCertificates: Runnable | undefined;
  if (tls) {
    if (!opts.kubeConfig) throw new Error('SICKBAY_TLS_SECRET needs access to the cluster (a kubeconfig or in-cluster credentials)');
    const kc = opts.kubeConfig;
    const o = { namespace: config.identity.namespace, ...tls, files: { cert: config.server.tlsCertFile, key: config.server.tlsKeyFile, ca: config.server.caBundleSync.caFile } };
    const tlsLog = log.child({ component: 'tls-secret' });
    const first = await ensureServingSecret(kc, o, tlsLog);
    tlsLog.info('serving certificate from Secret', { secret: `${config.identity.namespace}/${tls.name}`, action: first.action, notAfter: first.notAfter });
    keepCertificates = {
      name: 'tls-secret',
      needsLeadership: false,
      async start(signal) {
        while (!signal.aborted) {
          await sleep(60_000, signal).catch(() => undefined);
          if (signal.aborted) return;
          await ensureServingSecret(kc, o, tlsLog).catch((err) => tlsLog.warn('could not check the serving Secret; serving what the files hold', { error: errorText(err) }));
        }
      },
    };
  }
  // Every informer's list and watch request listens on this one signal: more than 10 is by design.
  setMaxListeners(100, abort.signal);
  let shuttingDown = false;
  // The one Event gate of the process: every recorder writes through it, and its counts are sickbay_events_total.
  const events = new EventGate();
  metrics.countEvents(() => events);
  const components = (await opts.components?.({ metrics, log, events })) ?? { runnables: [] };
  const manager = new Manager({
    runnables: [...components.runnables, ...(keepCertificates ? [keepCertificates] : [])],
    elector: components.elector,
    waitForCaches: components.waitForCaches,
    log,
  });

  const app = buildHandler({
    metrics,
    admission: {
      injection: { shimImage: config.injection.shimImage, shimSource: config.injection.shimSource, pullSecrets: config.injection.shimPullSecrets },
      sickbayUsername: config.identity.serviceAccountUsername,
      dryRun: config.injection.dryRun,
      maxBodyBytes: config.server.maxBodyBytes,
      // Four bodies of the largest size at once; pods of ordinary size, thousands.
      budget: new AdmissionBudget(4 * config.server.maxBodyBytes),
      decoratePod: components.decoratePod,
      namespaceOf: components.namespaceOf,
      metrics,
      log: log.child({ component: 'webhook' }),
    },
    alerts: components.alerts,
    readiness: {
      notReadyReason: () => (shuttingDown ? 'shutting down' : manager.notReadyReason()),
    },
  });
  const server = new HttpsServer({
    port: config.server.port,
    host: config.server.bindAddress,
    certFile: config.server.tlsCertFile,
    keyFile: config.server.tlsKeyFile,
    drainMs: config.server.drainMs,
    handler: app,
    log: log.child({ component: 'https' }),
    metrics,
  });
  const port = await server.listen();
  log.info('serving', { port, tls: config.server.tlsCertFile });

  const running = manager.run(abort.signal);

  let done: Promise<void> | undefined;
  return {
    port,
    metrics,
    server,
    shutdown() {
      done ??= (async () => {
        shuttingDown = true;
        log.info('shutting down: readiness fails, draining', { drainMs: config.server.drainMs });
        // Controllers stop and the lease is released while the webhook drains.
        abort.abort();
        // Events queued by the last reconciles are written before the process goes.
        const eventsWritten = events.idle(5_000).then((all) => {
          if (!all) log.warn('stopping with Events still unwritten');
        });
        await Promise.all([Promise.race([running, sleep(5_000)]), server.close(), eventsWritten]);
        log.info('stopped');
      })();
      return done;
    },
  };
}
