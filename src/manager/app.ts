// Routes of the one HTTPS port.
import type { RequestListener } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Metrics } from '../core/metrics.js';
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

/**
 * The request listener of the HTTPS port. POST /mutate and /validate are the hot path
 * (every pod creation waits on them): they go straight to their handlers; express
 * serves the rest. The handlers answer any method or transport problem themselves.
 */
export function buildHandler(opts: AppOptions): RequestListener {
  const mutate = admissionHandler('mutate', opts.admission);
  const validate = admissionHandler('validate', opts.admission);
  const app = buildApp(opts);
  return (req, res) => {
    const path = req.url?.split('?', 1)[0];
    if (req.method === 'POST' && path === '/mutate') return void mutate(req, res);
    if (req.method === 'POST' && path === '/validate') return void validate(req, res);
    app(req, res);
  };
}

export function buildApp(opts: AppOptions) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.post('/mutate', admissionHandler('mutate', opts.admission));
  app.post('/validate', admissionHandler('validate', opts.admission));
  if (opts.alerts) app.post('/alerts', opts.alerts);

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    const why = opts.readiness.notReadyReason();
    res
      .status(why ? 503 : 200)
      .type('text/plain')
      .send(why ?? 'ok');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status && err.status >= 400 && err.status < 500 ? err.status : 500).json({ error: err.message });
  });
  return app;
}
