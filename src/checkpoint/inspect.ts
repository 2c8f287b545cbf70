// `sickbay checkpoint inspect <archive>`: what a container checkpoint holds, read from the
// archive the kubelet wrote (a tar: the runtime's config.dump and spec.dump, the
// filesystem's changes in rootfs-diff.tar, and CRIU's images under checkpoint/). CRIU's
// images are protocol buffers behind a magic number (criu/images/*.proto): the process
// tree (pstree.img), each task's name (core-<pid>.img), its open files (ids-<pid>.img
// names its table, fdinfo-<id>.img lists the descriptors, files.img describes them) and
// its dumped memory (pagemap-<pid>.img). The archive is streamed once; only the small
// images are kept in memory, the memory pages are only counted.
import { createReadStream } from 'node:fs';
import { extract } from 'tar-stream';

/** One field of a protocol buffer message: a varint (as bigint), or bytes (strings, sub-messages, packed lists). */
type Field = bigint | Buffer;
type Message = Map<number, Field[]>;

/** Decodes one protocol buffer message (proto2 wire format) into its fields by number. */
export function decodeMessage(buf: Buffer): Message {
  const out: Message = new Map();
  let i = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('a truncated varint');
      const b = buf[i++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new Error('a varint over 10 bytes');
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let value: Field;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = Number(varint());
      if (i + len > buf.length) throw new Error('a field longer than its message');
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      value = buf.readBigUInt64LE(i);
      i += 8;
    } else if (wire === 5) {
      value = BigInt(buf.readUInt32LE(i));
      i += 4;
    } else throw new Error(`wire type ${wire} is not in CRIU's images`);
    const list = out.get(field);
    if (list) list.push(value);
    else out.set(field, [value]);
  }
  return out;
}

const IMG_COMMON_MAGIC = 0x54564319;
const IMG_SERVICE_MAGIC = 0x55105940;

/** The entries of one CRIU image: after its magic(s), each a 32-bit length and a message. */
export function imageEntries(buf: Buffer): Message[] {
  if (buf.length < 4) return [];
  const first = buf.readUInt32LE(0);
  let i = first === IMG_COMMON_MAGIC || first === IMG_SERVICE_MAGIC ? 8 : 4;
  const out: Message[] = [];
  while (i + 4 <= buf.length) {
    const len = buf.readUInt32LE(i);
    i += 4;
    if (i + len > buf.length) throw new Error('an image entry longer than its file');
    out.push(decodeMessage(buf.subarray(i, i + len)));
    i += len;
  }
  return out;
}

const num = (m: Message | undefined, field: number): number | undefined => {
  const v = m?.get(field)?.[0];
  return typeof v === 'bigint' ? Number(v) : undefined;
};
const str = (m: Message | undefined, field: number): string | undefined => {
  const v = m?.get(field)?.[0];
  return Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
};
const sub = (m: Message | undefined, field: number): Message | undefined => {
  const v = m?.get(field)?.[0];
  return Buffer.isBuffer(v) ? decodeMessage(v) : undefined;
};
/** A repeated uint32, packed (varints back to back in one bytes field) or not. */
const nums = (m: Message | undefined, field: number): number[] => {
  const out: number[] = [];
  for (const v of m?.get(field) ?? []) {
    if (typeof v === 'bigint') {
      out.push(Number(v));
      continue;
    }
    let i = 0;
    while (i < v.length) {
      let n = 0;
      let shift = 0;
      let b: number;
      do {
        b = v[i++]!;
        n += (b & 0x7f) * 2 ** shift;
        shift += 7;
      } while (b & 0x80 && i < v.length);
      out.push(n);
    }
  }
  return out;
};

/** CRIU's fd_types (images/fdinfo.proto), as inspect names them. */
const FD_TYPES: Record<number, string> = {
  1: 'file',
  2: 'pipe',
  3: 'fifo',
  4: 'inet socket',
  5: 'unix socket',
  6: 'eventfd',
  7: 'eventpoll',
  8: 'inotify',
  9: 'signalfd',
  10: 'packet socket',
  11: 'tty',
  12: 'fanotify',
  13: 'netlink socket',
  14: 'namespace',
  15: 'tun',
  16: 'external',
  17: 'timerfd',
  18: 'memfd',
  19: 'bpf map',
  20: 'pidfd',
};
/** The field of file_entry holding each type's description. */
const FILE_FIELD: Record<number, number> = { 1: 3, 2: 18, 3: 17, 4: 4, 5: 16, 11: 19, 18: 20 };

export interface OpenFile {
  fd: number;
  type: string;
  /** A path, a socket's address or a pipe's number, when the image says. */
  name?: string;
}

export interface CheckpointProcess {
  pid: number;
  ppid: number;
  name: string;
  threads: number;
  /** Memory pages dumped for it (resident and written pages; shared ones counted once per process). */
  memoryBytes: number;
  files: OpenFile[];
}

export interface CheckpointSummary {
  archiveBytes: number;
  container?: { name?: string; pod?: string; namespace?: string; id?: string; image?: string; runtime?: string; created?: string; checkpointed?: string };
  command?: string[];
  user?: { uid?: number; gid?: number };
  processes: CheckpointProcess[];
  /** All memory pages in the archive (pages-*.img). */
  memoryBytes: number;
  /** The container's filesystem changes (rootfs-diff.tar). */
  rootfsDiffBytes: number;
  criuImages: number;
}

const PAGE = 4096;

function ipv4(words: number[]): string | undefined {
  if (words.length !== 1) return undefined;
  const w = words[0]!;
  return [w & 255, (w >>> 8) & 255, (w >>> 16) & 255, (w >>> 24) & 255].join('.');
}

function describeFile(type: number, entry: Message | undefined): string | undefined {
  const field = FILE_FIELD[type];
  const m = field ? sub(entry, field) : undefined;
  if (!m) return undefined;
  switch (type) {
    case 1:
      return str(m, 6); // reg_file_entry.name
    case 2:
    case 3:
      return `pipe:[${num(m, 2) ?? '?'}]`; // pipe_id
    case 4: {
      const src = ipv4(nums(m, 11)) ?? '?';
      const dst = ipv4(nums(m, 12));
      const port = num(m, 7);
      const proto = num(m, 5) === 6 ? 'tcp' : num(m, 5) === 17 ? 'udp' : 'ip';
      return `${proto} ${src}:${port ?? '?'}${dst && num(m, 8) ? ` -> ${dst}:${num(m, 8)}` : ''}`;
    }
    case 5: {
      const name = m.get(11)?.[0]; // unix_sk_entry.name (bytes)
      return Buffer.isBuffer(name) && name.length ? name.toString('utf8').replace(/\0/g, '@') : undefined;
    }
    case 11:
      return `tty index ${num(m, 3) ?? '?'}`;
    case 18:
      return str(m, 5) ? `memfd:${str(m, 5)}` : undefined;
    default:
      return undefined;
  }
}

/** Reads a checkpoint archive (as the kubelet writes it) into a summary. */
export async function inspectCheckpoint(file: string): Promise<CheckpointSummary> {
  const small = new Map<string, Buffer>();
  let memoryBytes = 0;
  let rootfsDiffBytes = 0;
  let archiveBytes = 0;
  let criuImages = 0;
  let sawCheckpoint = false;
  await new Promise<void>((resolve, reject) => {
    const ex = extract();
    ex.on('entry', (header, stream, next) => {
      const name = header.name.replace(/^\.\//, '');
      const size = header.size ?? 0;
      const base = name.replace(/^checkpoint\//, '');
      const inImages = name.startsWith('checkpoint/') && name.endsWith('.img');
      if (inImages) {
        criuImages++;
        sawCheckpoint = true;
      }
      if (inImages && /^pages-\d+\.img$/.test(base)) memoryBytes += size;
      if (name === 'rootfs-diff.tar') rootfsDiffBytes = size;
      const keep = (inImages && /^(pstree|files|inventory)\.img$|^(core|ids|pagemap)-\d+\.img$|^fdinfo-\d+\.img$/.test(base)) || name === 'config.dump' || name === 'spec.dump';
      if (!keep || size > 64 * 2 ** 20) {
        stream.on('end', next);
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        small.set(name, Buffer.concat(chunks));
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', (err: Error) => reject(new Error(`not a readable tar archive (${err.message})`, { cause: err })));
    const input = createReadStream(file);
    input.on('data', (c) => (archiveBytes += c.length));
    input.on('error', reject);
    input.pipe(ex);
  });
  if (!sawCheckpoint) throw new Error(`${file} is not a container checkpoint: no CRIU images under checkpoint/ (is it the archive the kubelet wrote?)`);
  const image = (base: string) => small.get(`checkpoint/${base}`);
  const json = (name: string): Record<string, unknown> | undefined => {
    const b = small.get(name);
    if (!b) return undefined;
    try {
      return JSON.parse(b.toString('utf8')) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };

  // Open files: files.img describes each file by id; fdinfo-<files_id>.img maps descriptors to them.
  const files = new Map<number, Message>();
  for (const e of imageEntries(image('files.img') ?? Buffer.alloc(0))) {
    const id = num(e, 2);
    if (id !== undefined) files.set(id, e);
  }
  const processes: CheckpointProcess[] = [];
  for (const e of imageEntries(image('pstree.img') ?? Buffer.alloc(0))) {
    const pid = num(e, 1) ?? 0;
    const core = imageEntries(image(`core-${pid}.img`) ?? Buffer.alloc(0))[0];
    const name = str(sub(core, 3), 6) ?? '?'; // core_entry.tc.comm
    const ids = imageEntries(image(`ids-${pid}.img`) ?? Buffer.alloc(0))[0] ?? sub(core, 4);
    const filesId = num(ids, 2);
    const open: OpenFile[] = [];
    for (const fd of filesId !== undefined ? imageEntries(image(`fdinfo-${filesId}.img`) ?? Buffer.alloc(0)) : []) {
      const type = num(fd, 3) ?? 0;
      const described = describeFile(type, files.get(num(fd, 1) ?? -1));
      open.push({ fd: num(fd, 4) ?? -1, type: FD_TYPES[type] ?? `type ${type}`, ...(described ? { name: described } : {}) });
    }
    open.sort((a, b) => a.fd - b.fd);
    let pages = 0;
    for (const [k, m] of imageEntries(image(`pagemap-${pid}.img`) ?? Buffer.alloc(0)).entries()) {
      if (k === 0) continue; // pagemap_head
      if (m.get(3)?.[0] === 1n) continue; // in_parent: not in this archive
      pages += num(m, 5) ?? num(m, 2) ?? 0;
    }
    processes.push({ pid, ppid: num(e, 2) ?? 0, name, threads: Math.max(1, nums(e, 5).length), memoryBytes: pages * PAGE, files: open });
  }
  const config = json('config.dump');
  const spec = json('spec.dump') as { process?: { args?: string[]; user?: { uid?: number; gid?: number } }; annotations?: Record<string, string> } | undefined;
  const cri = spec?.annotations ?? {};
  const s = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  return {
    archiveBytes,
    ...(config
      ? {
          container: {
            // The CRI runtimes' annotations name the container, its pod and namespace; config.dump's name is the runtime's own.
            name: s(cri['io.kubernetes.cri.container-name']) ?? s(cri['io.kubernetes.cri-o.ContainerName']) ?? s(config.name),
            pod: s(cri['io.kubernetes.cri.sandbox-name']) ?? s(cri['io.kubernetes.pod.name']),
            namespace: s(cri['io.kubernetes.cri.sandbox-namespace']) ?? s(cri['io.kubernetes.pod.namespace']),
            id: s(config.id),
            image: s(config.rootfsImageName) ?? s(config.rootfsImage),
            runtime: s(config.runtime),
            created: s(config.createdTime),
            checkpointed: s(config.checkpointedTime),
          },
        }
      : {}),
    ...(spec?.process?.args ? { command: spec.process.args } : {}),
    ...(spec?.process?.user ? { user: { uid: spec.process.user.uid, gid: spec.process.user.gid } } : {}),
    processes,
    memoryBytes,
    rootfsDiffBytes,
    criuImages,
  };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** The summary for a person: the container, then the process tree with each process's memory and open files. */
export function renderCheckpoint(s: CheckpointSummary, file: string): string {
  const lines: string[] = [];
  lines.push(`${file}: ${mib(s.archiveBytes)}`);
  if (s.container) {
    const c = s.container;
    lines.push(`container  ${c.name ?? '?'}${c.pod ? `  pod ${c.namespace ? `${c.namespace}/` : ''}${c.pod}` : ''}${c.image ? `  image ${c.image}` : ''}${c.runtime ? `  runtime ${c.runtime}` : ''}`);
    if (c.checkpointed || c.created) lines.push(`           ${c.created ? `created ${c.created}` : ''}${c.checkpointed ? `  checkpointed ${c.checkpointed}` : ''}`.trimEnd());
  }
  if (s.command) lines.push(`command    ${s.command.join(' ')}`);
  if (s.user) lines.push(`user       uid ${s.user.uid ?? '?'}, gid ${s.user.gid ?? '?'}`);
  lines.push(`memory     ${mib(s.memoryBytes)} of pages dumped; filesystem changes ${mib(s.rootfsDiffBytes)}`);
  lines.push('', 'processes');
  const children = new Map<number, CheckpointProcess[]>();
  const pids = new Set(s.processes.map((p) => p.pid));
  for (const p of s.processes) {
    const parent = pids.has(p.ppid) ? p.ppid : 0;
    children.set(parent, [...(children.get(parent) ?? []), p]);
  }
  const walk = (parent: number, depth: number) => {
    for (const p of children.get(parent) ?? []) {
      const pad = '  '.repeat(depth + 1);
      lines.push(`${pad}${p.pid} ${p.name}  ${p.threads} thread${p.threads === 1 ? '' : 's'}, ${mib(p.memoryBytes)}, ${p.files.length} open file${p.files.length === 1 ? '' : 's'}`);
      for (const f of p.files) lines.push(`${pad}    fd ${f.fd}  ${f.type}${f.name ? `  ${f.name}` : ''}`);
      walk(p.pid, depth + 1);
    }
  };
  walk(0, 0);
  return `${lines.join('\n')}\n`;
}
