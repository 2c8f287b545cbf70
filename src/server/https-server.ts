// The one HTTPS port: TLS 1.2+, certificates hot-swapped without dropping connections,
// keep-alive longer than the API server's idle connections, and a drain on shutdown.
// Slow or idle clients are cut: the TLS handshake, then each whole request (headers and
// body), must arrive within the request timeout, longer than the API server waits for a
// webhook (5 s by default, 30 s at most) plus a margin, and connections are capped.
//
// ALPN picks the protocol of each connection: HTTP/2 for the API server, whose webhook
// client then multiplexes every call on one connection (over HTTP/1.1 a burst of pod
// creations opened a new connection, a full TLS handshake, for most calls: see
// bench/README.md), HTTP/1.1 for everyone else (kubelet probes). The HTTPS server keeps
// the TLS listener, its limits and HTTP/1.1; an HTTP/2 server that never listens gets
// the connections that chose h2.
import http2 from 'node:http2';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { CertificateReloader } from '../tls/certificate-reloader.js';
import { sleep } from '../util/wait.js';

// The API server keeps idle webhook connections for 90 s; closing first would make it
// send on a dead socket.
const KEEP_ALIVE_MS = 120_000;
/** The chart's webhook timeout (5 s) with a margin: no admission request takes longer. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Far above what the API servers, kubelet probes and Prometheus open; each costs memory. */
export const MAX_CONNECTIONS = 1024;

export interface HttpsServerOptions {
  port: number;
  host: string;
  certFile: string;
  keyFile: string;
  drainMs: number;
  handler: RequestListener;
  /** HTTP/2 requests (Node's compatibility API); without it, only HTTP/1.1 is offered. */
  http2Handler?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  log?: Logger;
  metrics?: Metrics;
  /** TLS handshake, and each request's headers and body: cut after this (REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  maxConnections?: number;
}

/** Streams a client may have open at once on one HTTP/2 connection (the API server's calls in flight). */
export const MAX_CONCURRENT_STREAMS = 250;

export class HttpsServer {
  private readonly server: https.Server;
  private readonly sessions = new Set<http2.Http2Session>();
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
        ALPNProtocols: opts.http2Handler ? ['h2', 'http/1.1'] : ['http/1.1'],
      },
      opts.handler,
    );
    if (opts.http2Handler) this.serveHttp2(opts.http2Handler, timeout);
    this.server.keepAliveTimeout = KEEP_ALIVE_MS;
    this.server.headersTimeout = timeout; // never above requestTimeout (Node's rule)
    this.server.requestTimeout = timeout;
    this.server.maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.server.on('drop', () => opts.metrics?.connectionsDropped.inc());
    // Connection churn: every new TLS connection costs a handshake.
    this.server.on('secureConnection', (socket: TLSSocket) => opts.metrics?.tlsHandshakes.inc({ resumed: socket.isSessionReused() ? 'true' : 'false' }));
  }

  /** Connections that negotiated h2 go to an HTTP/2 server; the others to HTTPS's own HTTP/1.1. */
  private serveHttp2(handler: NonNullable<HttpsServerOptions['http2Handler']>, timeout: number) {
    const h2 = http2.createServer({ settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS } }, (req, res) => {
      // A whole request within the timeout, as HTTP/1.1's requestTimeout: a stream that
      // trickles its body is cancelled; the connection and its other streams go on.
      const cut = setTimeout(() => req.stream.close(http2.constants.NGHTTP2_CANCEL), timeout);
      req.stream.once('close', () => clearTimeout(cut));
      handler(req, res);
    });
    h2.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      // Idle as long as an HTTP/1.1 keep-alive connection may be.
      session.setTimeout(KEEP_ALIVE_MS, () => session.close());
    });
    const http1 = this.server.listeners('secureConnection') as Array<(socket: TLSSocket) => void>;
    this.server.removeAllListeners('secureConnection');
    this.server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else for (const l of http1) l.call(this.server, socket);
    });
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
      // HTTP/2: GOAWAY; the streams in flight finish.
      for (const session of this.sessions) session.close();
      await Promise.race([closed, sleep(5_000)]);
      this.server.closeAllConnections();
      for (const session of this.sessions) session.destroy();
      await closed;
    })();
    return this.closing;
  }
}
