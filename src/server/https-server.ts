// The one HTTPS port: TLS 1.2+, certificates hot-swapped without dropping connections,
// keep-alive longer than the API server's idle connections, and a drain on shutdown.
// Slow or idle clients are cut: the TLS handshake, then each whole request (headers and
// body), must arrive within the request timeout, longer than the API server waits for a
// webhook (5 s by default, 30 s at most) plus a margin, and connections are capped.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { CertificateReloader } from '../tls/certificate-reloader.js';
import { sleep } from '../util/wait.js';

// The API server keeps idle webhook connections for 90 s; closing first would make it
// send on a dead socket.
const KEEP_ALIVE_MS = 120_000;
/** The chart's webhook timeout (5 s) with a margin: no admission request takes longer. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Far above what the API servers, kubelet probes and Prometheus open; each costs memory. */
export const MAX_CONNECTIONS = 1024;
/**
 * From this share of the cap on, idle keep-alive connections are closed to make room:
 * otherwise clients holding one cheap request's connection open (8.5 a second fill 1,024
 * in the keep-alive window) leave the API server no connection at all.
 */
export const IDLE_EVICTION_SHARE = 0.9;

export interface HttpsServerOptions {
  port: number;
  host: string;
  certFile: string;
  keyFile: string;
  drainMs: number;
  handler: RequestListener;
  log: Logger;
  metrics?: Metrics;
  /** TLS handshake, and each request's headers and body: cut after this (REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  maxConnections?: number;
}

export class HttpsServer {
  private readonly server: https.Server;
  readonly certificates: CertificateReloader;
  private closing?: Promise<void>;

  constructor(private readonly opts: HttpsServerOptions) {
    this.certificates = new CertificateReloader(
      opts.certFile,
      opts.keyFile,
      (pair) => this.server.setSecureContext({ ...pair, minVersion: 'TLSv1.2' }),
      opts.log,
      opts.metrics,
    );
    const timeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.server = https.createServer(
      {
        ...this.certificates.pair,
        minVersion: 'TLSv1.2',
        handshakeTimeout: timeout,
        // Node checks the request timeouts on this interval (30 s by default): a slow
        // client would otherwise hold its connection that much longer.
        connectionsCheckingInterval: Math.min(1_000, timeout),
      },
      opts.handler,
    );
    this.server.keepAliveTimeout = KEEP_ALIVE_MS;
    this.server.headersTimeout = timeout; // never above requestTimeout (Node's rule)
    this.server.requestTimeout = timeout;
    const max = opts.maxConnections ?? MAX_CONNECTIONS;
    this.server.maxConnections = max;
    let open = 0;
    let lastEviction = 0;
    this.server.on('connection', (socket) => {
      open++;
      socket.once('close', () => open--);
      // Near the cap, the idle connections go first (those waiting for a next request); a
      // client that wants to keep one must use it. At most once a second: each pass is O(n).
      if (open >= max * IDLE_EVICTION_SHARE && Date.now() - lastEviction > 1_000) {
        lastEviction = Date.now();
        this.server.closeIdleConnections();
        opts.metrics?.idleConnectionsClosed.inc();
      }
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.server.on('drop', () => opts.metrics?.connectionsDropped.inc());
    // Connection churn: every new TLS connection costs a handshake (the API server opened
    // one for most webhook calls of a burst of pod creations: bench/README.md).
    this.server.on('secureConnection', (socket) => opts.metrics?.tlsHandshakes.inc({ resumed: socket.isSessionReused() ? 'true' : 'false' }));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.certificates.start();
    return (this.server.address() as AddressInfo).port;
  }

  /** Keeps serving for the drain window (readiness already fails), then closes. */
  close(drainMs = this.opts.drainMs): Promise<void> {
    this.closing ??= (async () => {
      this.certificates.stop();
      await sleep(drainMs);
      const closed = new Promise<void>((r) => this.server.close(() => r()));
      this.server.closeIdleConnections();
      await Promise.race([closed, sleep(5_000)]);
      this.server.closeAllConnections();
      await closed;
    })();
    return this.closing;
  }
}
