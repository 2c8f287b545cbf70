// `sickbay serve`: the webhook on every replica, the controllers on the leader.
// Start order: health endpoints and webhook first, then the manager (src/manager/):
// caches, then, once they have synced, leader-only work under the Lease.
import { setMaxListeners } from 'node:events';
import http, { type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { CaBundleSync } from '../webhook/ca-bundle-sync.js';
import { ShimDeliveryTracker } from '../webhook/shim-delivery.js';
import { type Elector, Manager, type Runnable } from './manager.js';

export type { Runnable } from './manager.js';

export interface ServeHandle {
  port: number;
  /** The probe listener's port (SICKBAY_HEALTH_PORT), when there is one. */
  healthPort?: number;
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
  /** The nodes, from the informer cache: what `SICKBAY_SHIM_DELIVERY=auto` decides by. */
  nodes?: ConstructorParameters<typeof ShimDeliveryTracker>[1];
}

export interface ServeOptions {
  kubeConfig?: KubeConfig;
  /** Controllers, caches and the handlers that need them, assembled by the caller. */
  components?: (ctx: { metrics: Metrics; log: Logger; eventGate: EventGate }) => Components | Promise<Components>;
  metrics?: Metrics;
}

export async function serve(config: Config, log: Logger, opts: ServeOptions = {}): Promise<ServeHandle> {
  const metrics = opts.metrics ?? new Metrics({ defaults: true });
  metrics.watchCertificates({ serving: config.server.tlsCertFile, ca: config.server.caBundleSync.caFile });
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
        let next = first.checkAfterMs;
        while (!signal.aborted) {
          await sleep(next, signal).catch(() => undefined);
          if (signal.aborted) return;
          const r = await ensureServingSecret(kc, o, tlsLog).catch((err) => void tlsLog.warn('could not check the serving Secret; serving what the files hold', { error: errorText(err) }));
          if (r) next = r.checkAfterMs;
        }
      },
    };
  }
  // Every informer's list and watch request listens on this one signal: more than 10 is by design.
  setMaxListeners(100, abort.signal);
  let shuttingDown = false;
  // The one Event gate of the process: every recorder writes through it, and its counts are sickbay_events_total.
  const eventGate = new EventGate();
  metrics.countEvents(() => eventGate);
  const components = (await opts.components?.({ metrics, log, eventGate })) ?? { runnables: [] };
  // The webhooks' CA bundle kept equal to the CA file: the webhook's own upkeep, so it runs
  // with the controllers off too (a webhook-only install whose CA rotates needs it as much).
  let caBundle: Runnable | undefined;
  if (config.server.caBundleSync.enabled) {
    if (!opts.kubeConfig) throw new Error('SICKBAY_CA_BUNDLE_SYNC needs access to the cluster (a kubeconfig or in-cluster credentials)');
    const sync = new CaBundleSync(opts.kubeConfig, { name: config.server.caBundleSync.configurationName, caFile: config.server.caBundleSync.caFile }, log.child({ component: 'ca-bundle' }), metrics);
    caBundle = { name: 'ca-bundle-sync', needsLeadership: false, start: (signal) => sync.run(signal) };
  }
  const manager = new Manager({
    runnables: [...components.runnables, ...(keepCertificates ? [keepCertificates] : []), ...(caBundle ? [caBundle] : [])],
    elector: components.elector,
    waitForCaches: components.waitForCaches,
    log,
    onTermFailed: (runnable) => metrics.failedTerms.inc({ runnable }),
  });

  const shimDelivery = new ShimDeliveryTracker(config.injection.shimDelivery, components.nodes, {
    log: log.child({ component: 'webhook' }),
    report: (d) => {
      for (const delivery of ['image-volume', 'init-container'] as const) metrics.shimDelivery.set({ delivery }, delivery === d ? 1 : 0);
    },
    until: abort.signal,
  });
  const readiness = { notReadyReason: () => (shuttingDown ? 'shutting down' : manager.notReadyReason()) };
  const app = buildHandler({
    metrics,
    admission: {
      injection: {
        shimImage: config.injection.shimImage,
        shimSource: config.injection.shimSource,
        pullSecrets: config.injection.shimPullSecrets,
        get delivery() {
          return shimDelivery.current.delivery;
        },
      },
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
    readiness,
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
  // The kubelet's probes on a listener of their own: HTTPS load, or clients holding its
  // connections up to the cap, never make a probe wait or fail (controller-runtime's
  // health probe address does the same).
  const health = config.server.healthPort ? await listenHealth(config.server.bindAddress, config.server.healthPort, readiness) : undefined;
  if (health) log.info('serving probes', { port: (health.address() as AddressInfo).port, paths: ['/healthz', '/readyz'] });

  const running = manager.run(abort.signal);

  let done: Promise<void> | undefined;
  return {
    port,
    healthPort: health ? (health.address() as AddressInfo).port : undefined,
    metrics,
    server,
    shutdown() {
      done ??= (async () => {
        shuttingDown = true;
        log.info('shutting down: readiness fails, draining', { drainMs: config.server.drainMs });
        // Controllers stop and the lease is released while the webhook drains.
        abort.abort();
        // Events queued by the last reconciles are written before the process goes.
        const eventsWritten = eventGate.idle(5_000).then((all) => {
          if (!all) log.warn('stopping with Events still unwritten');
        });
        await Promise.all([Promise.race([running, sleep(5_000)]), server.close().then(() => closeHealth(health)), eventsWritten]);
        log.info('stopped');
      })();
      return done;
    },
  };
}

/** /healthz (the process answers) and /readyz (it would serve admission), plain HTTP, nothing else. */
async function listenHealth(host: string, port: number, readiness: { notReadyReason(): string | undefined }): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = req.url?.split('?', 1)[0];
    const why = path === '/readyz' ? readiness.notReadyReason() : undefined;
    const status = path === '/healthz' || path === '/readyz' ? (why ? 503 : 200) : 404;
    const body = status === 404 ? 'only /healthz and /readyz here' : (why ?? 'ok');
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 5_000;
  server.requestTimeout = 5_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

function closeHealth(server: http.Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
