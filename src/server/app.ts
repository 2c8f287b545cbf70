// Routes of the one HTTPS port.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Metrics } from '../metrics.js';
import { type AdmissionDeps, admissionHandler } from '../webhook/admission.js';

export interface Readiness {
  /** undefined when ready, else why not. */
  notReadyReason(): string | undefined;
}

export interface AppOptions {
  admission: AdmissionDeps;
  metrics: Metrics;
  readiness: Readiness;
  /** POST /alerts, when the pod isolation controller runs in this process. */
  alerts?: RequestListener;
}

/** A handler that works on HTTP/1.1 and on HTTP/2 (Node's compatibility API) alike. */
type Handler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void | Promise<void>;

function text(res: ServerResponse | Http2ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The routes, as plain handlers: express serves them over HTTP/1.1, the table below over HTTP/2. */
function routes(opts: AppOptions): Record<string, Handler> {
  return {
    'POST /mutate': admissionHandler('mutate', opts.admission) as Handler,
    'POST /validate': admissionHandler('validate', opts.admission) as Handler,
    ...(opts.alerts ? { 'POST /alerts': opts.alerts as Handler } : {}),
    'GET /healthz': (_req, res) => text(res, 200, 'ok'),
    'GET /readyz': (_req, res) => {
      const why = opts.readiness.notReadyReason();
      text(res, why ? 503 : 200, why ?? 'ok');
    },
    'GET /metrics': async (_req, res) => text(res, 200, await opts.metrics.registry.metrics(), opts.metrics.registry.contentType),
  };
}

/**
 * The request listeners of the HTTPS port. POST /mutate and /validate are the hot path
 * (every pod creation waits on them): over HTTP/1.1 they go straight to their handlers
 * and express serves the rest; over HTTP/2 (the API server's connections) every route
 * is looked up in the same table (express cannot serve HTTP/2 requests). The handlers
 * answer any method or transport problem themselves.
 */
export function buildHandler(opts: AppOptions): { http1: RequestListener; http2: (req: Http2ServerRequest, res: Http2ServerResponse) => void } {
  const table = routes(opts);
  const mutate = table['POST /mutate']!;
  const validate = table['POST /validate']!;
  const app = buildApp(opts, table);
  return {
    http1: (req, res) => {
      const path = req.url?.split('?', 1)[0];
      if (req.method === 'POST' && path === '/mutate') return void mutate(req, res);
      if (req.method === 'POST' && path === '/validate') return void validate(req, res);
      app(req, res);
    },
    http2: (req, res) => {
      const path = req.url?.split('?', 1)[0];
      const route = table[`${req.method} ${path}`];
      if (!route) return text(res, 404, JSON.stringify({ error: `no route for ${req.method} ${path}` }), 'application/json; charset=utf-8');
      Promise.resolve(route(req, res)).catch((err: Error) => {
        if (!res.headersSent) text(res, 500, JSON.stringify({ error: err.message }), 'application/json; charset=utf-8');
      });
    },
  };
}

export function buildApp(opts: AppOptions, table = routes(opts)) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  for (const [route, handler] of Object.entries(table)) {
    const [method, path] = route.split(' ') as [string, string];
    const h = (req: Request, res: Response, next: NextFunction) => void Promise.resolve(handler(req, res)).catch(next);
    if (method === 'POST') app.post(path, h);
    else app.get(path, h);
  }

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status && err.status >= 400 && err.status < 500 ? err.status : 500).json({ error: err.message });
  });
  return app;
}
