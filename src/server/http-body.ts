// What every POST endpoint of the HTTPS port needs before its own logic: the method, a
// JSON content type, a body read within a size limit (declared or actual), and JSON
// replies. Admission and /alerts share it, so both refuse the same things the same way.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request the endpoint refuses before reading it: answered with `status` and the message. */
export class TransportError extends Error {
  constructor(
    readonly status: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Checks the method and content type, then reads the body: at most `limit` bytes.
 * `admit(n)`, when given, is asked before each chunk is kept (a budget of bytes in
 * flight): a TransportError it throws ends the read with that answer.
 */
export function readJsonRequest(req: IncomingMessage, what: string, limit: number, admit?: (bytes: number) => void): Promise<Buffer> {
  if (req.method !== 'POST') return Promise.reject(new TransportError(405, `use POST for ${what}`));
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') return Promise.reject(new TransportError(415, `content type must be application/json, got ${JSON.stringify(type || 'none')}`));
  return readBody(req, limit, admit);
}

function readBody(req: IncomingMessage, limit: number, admit?: (bytes: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return reject(new TransportError(413, `body of ${declared} bytes is over the ${limit}-byte limit`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        reject(new TransportError(413, `body is over the ${limit}-byte limit`));
        return;
      }
      try {
        admit?.(chunk.length);
      } catch (err) {
        over = true;
        chunks.length = 0;
        req.resume();
        reject(err);
        return;
      }
      chunks.push(chunk);
    });
    // Bytes, not strings, until the end: a character split across chunks stays whole.
    req.on('end', () => over || resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new TransportError(400, 'the client went away before the body ended')));
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (res.headersSent || res.destroyed) return;
  const data = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/** Answers a TransportError with its status; anything else is the caller's to handle. */
export function sendTransportError(res: ServerResponse, err: TransportError) {
  sendJson(res, err.status, { error: err.message }, err.status === 413 ? { connection: 'close' } : {});
}
