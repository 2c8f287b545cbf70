// The checkpoint's pure parts: the agent's reading of the kubelet's answers and its guard
// on what it removes, the serve side's opt-in and requests, the reading of CRIU's images
// (against images written here in CRIU's format), and the restore bundle's spec. The real
// kubelet, CRIU and runc are in tests/integration/checkpoint.test.ts.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pack } from 'tar-stream';
import { archiveOf, Checkpointer, isArchiveIn, kubeletRefusal } from '../../src/agent/checkpoints.js';
import { checkpointWanted, supervisedContainers, withRequests } from '../../src/checkpoint/checkpoint-step.js';
import { decodeMessage, imageEntries, inspectCheckpoint, renderCheckpoint } from '../../src/checkpoint/inspect.js';
import { restoreSpec } from '../../src/checkpoint/restore-bundle.js';
import { createLogger } from '../../src/core/log.js';
import type { CheckpointRequest } from '../../src/core/nodehealth.js';
import { inOrder, type PostQuarantineStep } from '../../src/kube/steps.js';
import type { AnyPod } from '../../src/kube/pods.js';

const log = createLogger('error');

// ---- CRIU's image format, written here: a magic pair, then (length, protobuf message) entries ----
const varint = (n: number): Buffer => {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
};
const key = (field: number, wire: number) => varint(field * 8 + wire);
const u = (field: number, n: number) => Buffer.concat([key(field, 0), varint(n)]);
const bytes = (field: number, b: Buffer | string) => {
  const v = Buffer.isBuffer(b) ? b : Buffer.from(b);
  return Buffer.concat([key(field, 2), varint(v.length), v]);
};
const msg = (...fields: Buffer[]) => Buffer.concat(fields);
const image = (magic: number, ...entries: Buffer[]) => {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x54564319, 0); // IMG_COMMON_MAGIC
  head.writeUInt32LE(magic, 4);
  return Buffer.concat([head, ...entries.flatMap((e) => {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(e.length);
    return [len, e];
  })]);
};

async function writeTar(file: string, entries: Record<string, Buffer | string>) {
  const p = pack();
  const done = new Promise<void>((resolve, reject) => p.pipe(createWriteStream(file)).on('finish', resolve).on('error', reject));
  for (const [name, body] of Object.entries(entries)) p.entry({ name }, body);
  p.finalize();
  await done;
}

describe('reading a checkpoint archive', () => {
  it('decodes protobuf fields: varints past 32 bits, strings, packed repeated', () => {
    const m = decodeMessage(msg(u(1, 2 ** 40 + 5), bytes(6, 'java'), bytes(5, Buffer.concat([varint(300), varint(7)]))));
    assert.equal(m.get(1)![0], 2n ** 40n + 5n);
    assert.equal((m.get(6)![0] as Buffer).toString(), 'java');
    assert.throws(() => decodeMessage(Buffer.from([0x08, 0x80])), /truncated varint/);
    assert.throws(() => decodeMessage(Buffer.from([0x0a, 0x05, 0x01])), /longer than its message/);
    assert.throws(() => imageEntries(Buffer.concat([Buffer.from([0x19, 0x43, 0x56, 0x54, 0, 0, 0, 0]), Buffer.from([9, 0, 0, 0, 1])])), /longer than its file/);
  });

  it('shows the process tree, each process with its threads, memory and open files, from the images', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-ckpt-'));
    try {
      const file = path.join(dir, 'checkpoint.tar');
      const pstree = image(0x50273030, msg(u(1, 1), u(2, 0), u(3, 1), u(4, 1), bytes(5, Buffer.concat([varint(1), varint(9), varint(10)]))), msg(u(1, 7), u(2, 1), u(3, 1), u(4, 1), u(5, 7)));
      const core = (comm: string) => image(0x55053847, msg(u(1, 1), bytes(3, msg(u(1, 1), u(2, 0), u(3, 0), u(4, 0), u(5, 0), bytes(6, comm)))));
      const ids = (filesId: number) => image(0x54432030, msg(u(1, 1), u(2, filesId), u(3, 1), u(4, 1)));
      // Descriptor 3 of pid 1: a file; 4: a TCP socket on 0.0.0.0:8080; pid 7 shares nothing but a pipe.
      const fdinfo1 = image(0x56213732, msg(u(1, 100), u(2, 0), u(3, 1), u(4, 3)), msg(u(1, 101), u(2, 0), u(3, 4), u(4, 4)));
      const fdinfo2 = image(0x56213732, msg(u(1, 102), u(2, 0), u(3, 2), u(4, 1)));
      const files = image(
        0x56303138,
        msg(u(1, 1), u(2, 100), bytes(3, msg(u(1, 100), u(2, 0), u(3, 0), bytes(5, msg()), bytes(6, '/app/data.db')))),
        msg(u(1, 4), u(2, 101), bytes(4, msg(u(1, 101), u(2, 0), u(3, 2), u(4, 1), u(5, 6), u(6, 10), u(7, 8080), u(8, 0), u(9, 0), u(10, 0), u(11, 0)))),
        msg(u(1, 2), u(2, 102), bytes(18, msg(u(1, 102), u(2, 4242), u(3, 0), bytes(4, msg())))),
      );
      const pagemap = (pages: number) => image(0x56084025, msg(u(1, 1)), msg(u(1, 0x400000), u(2, pages)), msg(u(1, 0x800000), u(2, 0), u(3, 1), u(5, 1)));
      await writeTar(file, {
        'config.dump': JSON.stringify({ id: 'abc', name: 'app_shop_demo_uid_0', rootfsImageName: 'example.com/shop:1', runtime: 'io.containerd.runc.v2', checkpointedTime: '2026-12-07T10:00:00Z' }),
        'spec.dump': JSON.stringify({ process: { args: ['java', '-jar', 'shop.jar'], user: { uid: 1000, gid: 1000 } }, annotations: { 'io.kubernetes.cri.container-name': 'app', 'io.kubernetes.cri.sandbox-name': 'shop-1', 'io.kubernetes.cri.sandbox-namespace': 'demo' } }),
        'rootfs-diff.tar': Buffer.alloc(1024),
        'checkpoint/pstree.img': pstree,
        'checkpoint/core-1.img': core('java'),
        'checkpoint/core-7.img': core('sh'),
        'checkpoint/ids-1.img': ids(1),
        'checkpoint/ids-7.img': ids(2),
        'checkpoint/fdinfo-1.img': fdinfo1,
        'checkpoint/fdinfo-2.img': fdinfo2,
        'checkpoint/files.img': files,
        'checkpoint/pagemap-1.img': pagemap(3),
        'checkpoint/pagemap-7.img': pagemap(1),
        'checkpoint/pages-1.img': Buffer.alloc(4 * 4096),
      });
      const s = await inspectCheckpoint(file);
      assert.deepEqual(s.container, { name: 'app', pod: 'shop-1', namespace: 'demo', id: 'abc', image: 'example.com/shop:1', runtime: 'io.containerd.runc.v2', created: undefined, checkpointed: '2026-12-07T10:00:00Z' });
      assert.deepEqual(s.user, { uid: 1000, gid: 1000 });
      assert.equal(s.memoryBytes, 4 * 4096);
      assert.equal(s.rootfsDiffBytes, 1024);
      assert.deepEqual(
        s.processes.map((p) => [p.pid, p.ppid, p.name, p.threads, p.memoryBytes]),
        [
          [1, 0, 'java', 3, 3 * 4096],
          [7, 1, 'sh', 1, 4096],
        ],
        'threads from the packed list; the in-parent pages not counted',
      );
      assert.deepEqual(s.processes[0]!.files, [
        { fd: 3, type: 'file', name: '/app/data.db' },
        { fd: 4, type: 'inet socket', name: 'tcp 0.0.0.0:8080' },
      ]);
      assert.deepEqual(s.processes[1]!.files, [{ fd: 1, type: 'pipe', name: 'pipe:[4242]' }]);
      const text = renderCheckpoint(s, file);
      assert.match(text, /^container {2}app {2}pod demo\/shop-1 {2}image example\.com\/shop:1/m);
      assert.match(text, /^ {2}1 java {2}3 threads, 0\.0 MiB, 2 open files$/m);
      assert.match(text, /^ {4}7 sh {2}1 thread/m, 'a child under its parent');
      // A tar that is no checkpoint, and a file that is no tar.
      await writeTar(path.join(dir, 'other.tar'), { 'README': 'hello' });
      await assert.rejects(inspectCheckpoint(path.join(dir, 'other.tar')), /not a container checkpoint/);
      writeFileSync(path.join(dir, 'garbage'), 'not a tar at all, and long enough to be read as a header '.repeat(20));
      await assert.rejects(inspectCheckpoint(path.join(dir, 'garbage')), /not a readable tar archive|not a container checkpoint/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the agent takes checkpoints asked of it', () => {
  it("reads the kubelet's answers and says what a refusal means", () => {
    assert.equal(archiveOf('{"items":["/var/lib/kubelet/checkpoints/checkpoint-a_b-c-2026.tar"]}'), '/var/lib/kubelet/checkpoints/checkpoint-a_b-c-2026.tar');
    assert.throws(() => archiveOf('{"items":[]}'), /named no archive/);
    assert.throws(() => archiveOf('<html>'), /not JSON/);
    assert.match(kubeletRefusal(403, 'Forbidden (user=system:serviceaccount:x:y, verb=create, resource=nodes, subresource(s)=[checkpoint])'), /needs create on nodes\/checkpoint/);
    assert.match(kubeletRefusal(500, 'rpc error: code = Unimplemented desc = method CheckpointContainer not implemented'), /runtime cannot checkpoint/);
    assert.match(kubeletRefusal(404, 'not found'), /ContainerCheckpoint/);
  });

  it('removes only archives the kubelet wrote in its checkpoints folder', () => {
    const dir = '/var/lib/kubelet/checkpoints';
    assert.ok(isArchiveIn(`${dir}/checkpoint-shop-1_demo-app-2026-12-07T10:00:00Z.tar`, dir));
    assert.ok(!isArchiveIn(`${dir}/../../../etc/passwd`, dir));
    assert.ok(!isArchiveIn(`${dir}/checkpoint-x.tar/../../kubelet.conf`, dir));
    assert.ok(!isArchiveIn(`${dir}/sub/checkpoint-x.tar`, dir));
    assert.ok(!isArchiveIn('/etc/checkpoint-x.tar', dir));
    assert.ok(!isArchiveIn('checkpoint-x.tar', dir), 'relative');
    assert.ok(!isArchiveIn(`${dir}/checkpoint-x.tar`, ''), 'no folder configured: nothing is removed');
  });

  it('answers each request, even with checkpoints off; withdraws records and removes their archives, never one outside the folder', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-ckpt-'));
    try {
      let changes = 0;
      const c = new Checkpointer({ getCurrentCluster: () => null, applyToHTTPSOptions: async () => undefined }, { kubeletApi: '', kubeletCaFile: '', kubeletInsecure: false, timeoutMs: 1000, archiveDir: dir }, log, () => changes++);
      const req = (uid: string, container = 'app'): CheckpointRequest => ({ namespace: 'demo', pod: `p-${uid}`, uid, container, requestedAt: '2026-12-07T10:00:00Z' });
      c.sync([req('1')]);
      await c.idle();
      assert.equal(c.list().length, 1);
      assert.equal(c.list()[0]!.status, 'failed');
      assert.match(c.list()[0]!.message ?? '', /checkpoints are off on this node's agent/);
      assert.equal(changes, 1);
      // A restarted agent's records: one archive in the folder, one that claims a path outside it.
      const inside = path.join(dir, 'checkpoint-p-2_demo-app-2026.tar');
      const outside = path.join(tmpdir(), `checkpoint-not-ours-${process.pid}.tar`);
      writeFileSync(inside, 'x');
      writeFileSync(outside, 'x');
      c.restore([
        { uid: '2', container: 'app', status: 'ok', archive: inside, at: '' },
        { uid: '3', container: 'app', status: 'ok', archive: outside, at: '' },
      ]);
      c.sync([req('1'), req('2'), req('3')]);
      await c.idle();
      assert.equal(c.list().length, 3, 'restored records are not taken again');
      c.sync([req('1')]);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(c.list().map((r) => r.uid), ['1']);
      assert.ok(!existsSync(inside), 'the withdrawn archive is removed');
      assert.ok(existsSync(outside), 'a path outside the folder is never removed');
      assert.equal(c.counters.removed, 1);
      rmSync(outside, { force: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sickbay serve asks for checkpoints', () => {
  const pod = (annotations: Record<string, string> = {}): AnyPod => ({
    metadata: { name: 'p', namespace: 'demo', uid: 'u1', annotations },
    spec: { nodeName: 'n1', containers: [{ name: 'app', command: ['/sickbay/bin/supervise', 'java'] }, { name: 'sidecar', command: ['envoy'] }] },
  } as AnyPod);

  it("opts in by the pod's annotation or its namespace's, the pod's winning", () => {
    assert.equal(checkpointWanted(pod(), undefined), false);
    assert.equal(checkpointWanted(pod(), { 'sickbay.io/checkpoint': 'true' }), true);
    assert.equal(checkpointWanted(pod({ 'sickbay.io/checkpoint': 'false' }), { 'sickbay.io/checkpoint': 'true' }), false);
    assert.equal(checkpointWanted(pod({ 'sickbay.io/checkpoint': 'true' }), undefined), true);
    assert.equal(checkpointWanted(pod({ 'sickbay.io/checkpoint': 'yes please' }), undefined), false);
    assert.deepEqual(supervisedContainers(pod()), ['app'], 'only the supervised containers: their process is the scene');
  });

  it('adds its requests once, and drops those of pods that are gone', () => {
    const r = (uid: string, container = 'app'): CheckpointRequest => ({ namespace: 'demo', pod: uid, uid, container, requestedAt: '' });
    assert.deepEqual(withRequests([r('a'), r('b')], [r('c'), r('a')], (x) => x.uid === 'b').map((x) => x.uid), ['a', 'c']);
    const many = Array.from({ length: 70 }, (_, i) => r(String(i)));
    assert.equal(withRequests(many, [r('new')], () => false).length, 64, 'bounded: the oldest go');
  });

  it('runs the checkpoint before the dumps, and the dumps even when the checkpoint fails', async () => {
    const seen: string[] = [];
    const step = (name: string, fail = false): PostQuarantineStep => ({
      name,
      run: async () => {
        seen.push(name);
        if (fail) throw new Error(`${name} broke`);
      },
      forget: () => seen.push(`forget ${name}`),
    });
    const both = inOrder([step('checkpoint', true), step('diagnostics')]);
    assert.equal(both.name, 'checkpoint, then diagnostics');
    await assert.rejects(both.run(pod(), new AbortController().signal), /checkpoint: checkpoint broke/);
    assert.deepEqual(seen, ['checkpoint', 'diagnostics']);
    both.forget!(pod());
    assert.deepEqual(seen.slice(2), ['forget checkpoint', 'forget diagnostics']);
  });
});

describe('a restore bundle', () => {
  it("adjusts the checkpointed spec to this machine: the caller's network namespace, stand-ins for the pod's mounts, a cgroup of its own", () => {
    const spec = {
      root: { path: '/run/containerd/rootfs', readonly: true },
      annotations: { 'io.kubernetes.cri.sandbox-id': 'x' },
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/etc/hosts', type: 'bind', source: '/var/lib/kubelet/pods/u/etc-hosts', options: ['rbind', 'rw'] },
        { destination: '/var/run/secrets/kubernetes.io/serviceaccount', type: 'bind', source: '/var/lib/kubelet/pods/u/volumes/token', options: ['rbind', 'ro'] },
      ],
      linux: {
        cgroupsPath: '/kubepods/besteffort/podu/abc',
        namespaces: [{ type: 'pid' }, { type: 'ipc', path: '/proc/1/ns/ipc' }, { type: 'network', path: '/proc/1/ns/net' }, { type: 'mount' }],
      },
    };
    const { spec: out, standIns } = restoreSpec(spec, { netns: 'dbg', name: 'shop', mounts: '/tmp/b/mounts' });
    assert.deepEqual(out.root, { path: 'rootfs', readonly: false });
    assert.equal(out.annotations, undefined);
    assert.equal(out.linux!.cgroupsPath, '/sickbay-restore-shop');
    assert.deepEqual(out.linux!.namespaces, [{ type: 'pid' }, { type: 'ipc' }, { type: 'network', path: '/var/run/netns/dbg' }, { type: 'mount' }]);
    assert.deepEqual(out.mounts!.map((m) => m.source), ['proc', '/tmp/b/mounts/etc/hosts', '/tmp/b/mounts/var/run/secrets/kubernetes.io/serviceaccount']);
    assert.deepEqual(standIns, [
      { path: '/tmp/b/mounts/etc/hosts', file: true },
      { path: '/tmp/b/mounts/var/run/secrets/kubernetes.io/serviceaccount', file: false },
    ]);
    assert.equal(spec.linux.namespaces[2]!.path, '/proc/1/ns/net', 'the input is not changed');
  });
});
