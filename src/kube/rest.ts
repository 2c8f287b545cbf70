// The API server over plain HTTPS: one call, and one watch stream. The informer and the
// node agent use these instead of client-node's typed client and Watch, so a process that
// needs no more (the agent, on every node) never loads client-node, which is ~70 MB of
// the agent's memory (its generated models; bench/README.md, "The node agent").
import https from 'node:https';
import type { RequestOptions } from 'node:https';

/**
 * How to reach the API server: what client-node's KubeConfig offers, and what the agent's
 * own light configuration (light-config.ts) implements.
 */
export interface ApiAccess {
  getCurrentCluster(): { server: string } | null;
  applyToHTTPSOptions(opts: RequestOptions): Promise<void>;
}

/** An API error as the typed client throws it: `code` the HTTP status, `body` the Status text (errors.ts reads both). */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${code}`);
  }
}

const ANSWER_BYTES = 1024 * 1024;

/**
 * One call: JSON in, JSON out. The request itself is aborted at `timeoutMs` (a call
 * abandoned but left running may still land, and then whoever waited miscounts it).
 */
export async function restCall<T = unknown>(access: ApiAccess, o: { method: string; path: string; body?: unknown; contentType?: string; timeoutMs: number; signal?: AbortSignal }): Promise<T> {
  const server = access.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig names no cluster');
  const deadline = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, deadline]) : deadline;
  const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
  const opts: RequestOptions = {
    method: o.method,
    headers: { accept: 'application/json', ...(payload !== undefined ? { 'content-type': o.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
    signal,
  };
  await access.applyToHTTPSOptions(opts);
  const what = `${o.method} ${o.path}`;
  return new Promise<T>((resolve, reject) => {
    const req = https.request(new URL(o.path, server), opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        if (text.length > ANSWER_BYTES) req.destroy(new Error(`${what}: an answer over ${ANSWER_BYTES} bytes`));
      });
      res.on('end', () => {
        const code = res.statusCode ?? 0;
        if (code < 200 || code > 299) return reject(new ApiError(code, text, what));
        try {
          resolve((text ? JSON.parse(text) : undefined) as T);
        } catch (err) {
          reject(new Error(`${what}: an answer that is not JSON`, { cause: err }));
        }
      });
      res.on('error', reject);
    });
    req.on('error', (err) => reject(deadline.aborted && !o.signal?.aborted ? new Error(`${what}: no answer within ${o.timeoutMs} ms`, { cause: err }) : err));
    req.end(payload);
  });
}

/**
 * A watch: `onEvent` for each line the API server sends; resolves when the server ends
 * the stream (or `signal` aborts), rejects on a transport error or an answer other than
 * 200 (with its `code`, so a 410 is told apart). An ERROR event is the caller's to read.
 */
export async function watchStream(access: ApiAccess, path: string, query: Record<string, string | number | boolean>, onEvent: (type: string, obj: unknown) => void, signal: AbortSignal): Promise<void> {
  const server = access.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig names no cluster');
  const url = new URL(path, server);
  url.searchParams.set('watch', 'true');
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  const opts: RequestOptions = { method: 'GET', headers: { accept: 'application/json' }, signal };
  await access.applyToHTTPSOptions(opts);
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err && !signal.aborted) reject(err);
      else resolve();
    };
    const req = https.request(url, opts, (res) => {
      if (res.statusCode !== 200) {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text = (text + c).slice(0, 4096)));
        res.on('end', () => settle(new ApiError(res.statusCode ?? 0, text, `watch ${path}`)));
        res.on('error', settle);
        return;
      }
      // Keep-alive probes on the idle stream: a peer gone without a FIN is noticed.
      res.socket.setKeepAlive(true, 30_000);
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        partial += chunk;
        let nl: number;
        while ((nl = partial.indexOf('\n')) >= 0) {
          const line = partial.slice(0, nl);
          partial = partial.slice(nl + 1);
          if (!line.trim()) continue;
          let event: { type?: string; object?: unknown };
          try {
            event = JSON.parse(line) as { type?: string; object?: unknown };
          } catch (err) {
            req.destroy();
            return settle(new Error(`watch ${path}: a line that is not JSON`, { cause: err }));
          }
          onEvent(event.type ?? '', event.object);
        }
      });
      res.on('end', () => settle());
      res.on('close', () => settle(res.complete ? undefined : new Error(`watch ${path}: connection closed`)));
      res.on('error', settle);
    });
    req.on('error', settle);
    req.end();
  });
}
