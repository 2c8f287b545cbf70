// `sickbay archives list|get`: the scene bundles sickbay wrote to its archive before it
// deleted the pods, found by namespace, workload, pod or time. Reads the same
// SICKBAY_ARCHIVE_* settings as `sickbay serve` (the endpoint, the bucket, the prefix, the
// credentials): a person runs it with read access to the bucket, no cluster access needed.
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArchiveKey } from '../archive/archiver.js';
import { S3Error, S3Store } from '../archive/s3.js';
import { CliError, EXIT } from './commands.js';
import type { ArchiveConfig } from '../core/config.js';

export interface ListFilter {
  namespace?: string;
  /** Kind/name, as `sickbay.io/owner` says it (Deployment/shop). */
  workload?: string;
  pod?: string;
  /** Only bundles written at or after this. */
  since?: Date;
}

export interface ListedBundle {
  key: string;
  namespace: string;
  workload: string;
  pod: string;
  at: Date;
  bytes: number;
}

export async function listArchives(config: ArchiveConfig, f: ListFilter = {}): Promise<ListedBundle[]> {
  const store = new S3Store(config.store);
  const prefix = config.store.prefix;
  const objects = await store.list(f.namespace ? `${prefix}${f.namespace}/` : prefix);
  const out: ListedBundle[] = [];
  for (const o of objects) {
    const k = parseArchiveKey(prefix, o.key);
    if (!k) continue;
    if (f.workload && k.workload.toLowerCase() !== f.workload.toLowerCase()) continue;
    if (f.pod && k.pod !== f.pod) continue;
    if (f.since && k.at < f.since) continue;
    out.push({ key: o.key, ...k, bytes: o.size });
  }
  return out.sort((a, b) => a.at.getTime() - b.at.getTime());
}

export function renderList(bundles: ListedBundle[]): string {
  if (bundles.length === 0) return 'no scene bundles match\n';
  const size = (n: number) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)}Mi` : `${Math.max(1, Math.round(n / 1024))}Ki`);
  const rows = [['TIME', 'NAMESPACE', 'WORKLOAD', 'POD', 'SIZE', 'KEY'], ...bundles.map((b) => [b.at.toISOString().replace(/\.\d+Z$/, 'Z'), b.namespace, b.workload, b.pod, size(b.bytes), b.key])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** Downloads one bundle to `file` (default: the key's last part, in the current folder). */
export async function getArchive(config: ArchiveConfig, key: string, file?: string): Promise<{ file: string }> {
  const store = new S3Store(config.store);
  const to = file ?? key.split('/').pop()!;
  await pipeline(await store.get(key), createWriteStream(to, { flags: 'wx' }));
  return { file: to };
}

/** A failure of `archives list|get`, said for what it is, with the CLI's exit code. */
export function archiveError(err: unknown, endpoint: string): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof S3Error) {
    if (err.status === 404 || err.code === 'NoSuchKey' || err.code === 'NoSuchBucket') return new CliError(`the archive at ${endpoint}: ${err.message}`, EXIT.notFound);
    if (err.status === 401 || err.status === 403) return new CliError(`the archive at ${endpoint} refused: ${err.message}`, EXIT.refused);
    return new CliError(`the archive at ${endpoint} answered: ${err.message}`, EXIT.failed);
  }
  const e = err as Error & { code?: string; cause?: { code?: string } };
  if (e?.code === 'EEXIST') return new CliError(`${e.message.replace(/^EEXIST: /, '')}: not replacing an existing file (pass -o <file>)`, EXIT.failed);
  const net = e?.cause?.code ?? e?.code;
  if (typeof net === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)$/.test(net)) return new CliError(`cannot reach the archive at ${endpoint}: ${net}`, EXIT.unreachable);
  return new CliError(`the archive at ${endpoint}: ${(err as Error)?.message ?? String(err)}`, EXIT.failed);
}
