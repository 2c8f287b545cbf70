// The few S3 calls the scene archive needs, on node:https, path-style (what S3-compatible
// stores answer: MinIO, Ceph RGW, Versity, cloud object stores), signed with AWS
// Signature Version 4 by the `aws4` package. An upload streams: parts of PART_BYTES are
// buffered and sent one at a time (a multipart upload; a bundle under one part is a
// single PUT), so memory stays bounded whatever the bundle's size, and an upload that
// fails is aborted, leaving no half object behind.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { Readable, Writable } from 'node:stream';
import aws4 from 'aws4';

export interface S3Settings {
  /** https://host[:port] (http:// only for a store on the same machine or a test). */
  endpoint: string;
  bucket: string;
  /** Keys start with it ("sickbay/"). */
  prefix: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** PEM file of a CA to trust besides the system's. */
  caFile?: string;
}

export interface S3Object {
  key: string;
  size: number;
  lastModified: Date;
}

/** 8 MiB: S3 wants parts of at least 5 MiB (but the last); memory held per upload. */
export const PART_BYTES = 8 * 2 ** 20;
const CALL_TIMEOUT_MS = 60_000;

export class S3Error extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

const unxml = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n))).replace(/&amp;/g, '&');
const tag = (xml: string, name: string) => {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? unxml(m[1]!) : undefined;
};
/** A key's path segments, each percent-encoded as S3's canonical URI wants. */
const encodeKey = (key: string) => key.split('/').map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/');

export class S3Store {
  private readonly url: URL;
  private readonly agent: http.Agent;

  constructor(readonly s: S3Settings) {
    this.url = new URL(s.endpoint);
    if (this.url.protocol !== 'https:' && this.url.protocol !== 'http:') throw new Error(`the archive endpoint must be an http(s) URL, got ${JSON.stringify(s.endpoint)}`);
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ca: s.caFile ? [...rootCertificates, readFileSync(s.caFile, 'utf8')] : undefined /* in addition to the system's, not instead */ }) : new http.Agent({ keepAlive: true });
  }

  /** Where a key lives, for a person: s3://bucket/key. */
  where(key: string) {
    return `s3://${this.s.bucket}/${key}`;
  }

  private async call(method: string, key: string, o: { query?: Record<string, string>; body?: Buffer; headers?: Record<string, string>; stream?: boolean; signal?: AbortSignal } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; res?: http.IncomingMessage }> {
    const qs = o.query ? new URLSearchParams(Object.entries(o.query).sort(([a], [b]) => (a < b ? -1 : 1))).toString().replace(/\+/g, '%20') : '';
    const path = `${this.url.pathname.replace(/\/$/, '')}/${encodeURIComponent(this.s.bucket)}${key ? `/${encodeKey(key)}` : ''}${qs ? `?${qs}` : ''}`;
    const req = aws4.sign(
      { host: this.url.host, path, method, service: 's3', region: this.s.region, headers: { ...o.headers, ...(o.body ? { 'Content-Length': String(o.body.length) } : {}) }, body: o.body ?? '' },
      { accessKeyId: this.s.accessKeyId, secretAccessKey: this.s.secretAccessKey },
    );
    const lib = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const r = lib.request({ protocol: this.url.protocol, hostname: this.url.hostname, port: this.url.port, path, method, headers: req.headers as http.OutgoingHttpHeaders, agent: this.agent, signal: o.signal ?? AbortSignal.timeout(CALL_TIMEOUT_MS) }, (res) => {
        const status = res.statusCode ?? 0;
        if (o.stream && status >= 200 && status < 300) return resolve({ status, headers: res.headers, body: Buffer.alloc(0), res });
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          if (status >= 200 && status < 300) return resolve({ status, headers: res.headers, body });
          const text = body.toString('utf8');
          const code = tag(text, 'Code') ?? `HTTP${status}`;
          const message = tag(text, 'Message');
          reject(new S3Error(`S3 ${method} ${this.where(key)}: ${status} ${code}${message ? `: ${message}` : ''}`, status, code));
        });
      });
      r.on('error', (err) => reject(new Error(`S3 ${method} ${this.where(key)}: ${err.message}`, { cause: err })));
      r.end(o.body);
    });
  }

  async put(key: string, body: Buffer, contentType = 'application/gzip'): Promise<void> {
    await this.call('PUT', key, { body, headers: { 'Content-Type': contentType } });
  }

  /**
   * A Writable that stores what is written under `key`; `done` settles once the object
   * is complete (or the upload failed and was aborted). Destroying the stream aborts.
   */
  upload(key: string, contentType = 'application/gzip'): { stream: Writable; done: Promise<{ bytes: number }> } {
    let buffered: Buffer[] = [];
    let size = 0;
    let total = 0;
    let uploadId: string | undefined;
    const parts: string[] = [];
    let inflight: Promise<void> = Promise.resolve();
    const flush = () => {
      const body = Buffer.concat(buffered);
      buffered = [];
      size = 0;
      inflight = (async () => {
        if (!uploadId) {
          const res = await this.call('POST', key, { query: { uploads: '' }, headers: { 'Content-Type': contentType } });
          uploadId = tag(res.body.toString('utf8'), 'UploadId');
          if (!uploadId) throw new Error(`S3 POST ${this.where(key)}?uploads: no UploadId in the answer`);
        }
        const res = await this.call('PUT', key, { query: { partNumber: String(parts.length + 1), uploadId }, body });
        parts.push(String(res.headers.etag ?? ''));
      })();
      return inflight;
    };
    // After the part in flight, if any: an upload started while the stream failed is aborted too.
    const abort = () =>
      inflight
        .catch(() => undefined)
        .then(async () => {
          if (uploadId) await this.call('DELETE', key, { query: { uploadId } }).catch(() => undefined);
        });
    let settle!: { resolve: (v: { bytes: number }) => void; reject: (e: Error) => void };
    const done = new Promise<{ bytes: number }>((resolve, reject) => (settle = { resolve, reject }));
    done.catch(() => undefined); // the caller may await `done` or the stream, or both
    const stream = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        buffered.push(chunk);
        size += chunk.length;
        total += chunk.length;
        if (size < PART_BYTES) return cb();
        flush().then(() => cb(), cb);
      },
      final: (cb) => {
        const finish = async () => {
          if (!uploadId) return this.put(key, Buffer.concat(buffered), contentType);
          if (size > 0) await flush();
          const xml = `<CompleteMultipartUpload>${parts.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${etag}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
          const res = await this.call('POST', key, { query: { uploadId }, body: Buffer.from(xml), headers: { 'Content-Type': 'application/xml' } });
          // S3 may answer 200 with an error in the body once the parts are assembled.
          const body = res.body.toString('utf8');
          if (/<Error>/.test(body)) throw new S3Error(`S3 complete ${this.where(key)}: ${tag(body, 'Code')}: ${tag(body, 'Message') ?? ''}`, 200, tag(body, 'Code') ?? 'Error');
        };
        finish().then(
          () => {
            settle.resolve({ bytes: total });
            cb();
          },
          (err: Error) => {
            void abort();
            settle.reject(err);
            cb(err);
          },
        );
      },
      destroy: (err, cb) => {
        if (err) {
          void abort();
          settle.reject(err);
        }
        cb(err);
      },
    });
    return { stream, done };
  }

  /** The objects under `prefix` (the store's prefix is not added), oldest first. */
  async list(prefix: string): Promise<S3Object[]> {
    const out: S3Object[] = [];
    let token: string | undefined;
    do {
      const res = await this.call('GET', '', { query: { 'list-type': '2', prefix, ...(token ? { 'continuation-token': token } : {}) } });
      const xml = res.body.toString('utf8');
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        out.push({ key: tag(m[1]!, 'Key')!, size: Number(tag(m[1]!, 'Size') ?? 0), lastModified: new Date(tag(m[1]!, 'LastModified') ?? 0) });
      }
      token = tag(xml, 'IsTruncated') === 'true' ? tag(xml, 'NextContinuationToken') : undefined;
    } while (token);
    return out.sort((a, b) => a.lastModified.getTime() - b.lastModified.getTime());
  }

  /** The object's bytes as a stream. */
  async get(key: string): Promise<Readable> {
    const res = await this.call('GET', key, { stream: true, signal: AbortSignal.timeout(30 * 60_000) });
    return res.res!;
  }
}
