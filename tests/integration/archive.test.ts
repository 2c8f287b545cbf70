// The scene archive's store and `sickbay archives`, against a real S3-compatible server
// (the Versity S3 Gateway, over TLS with its own CA): uploads streamed in parts, an
// upload that fails leaves nothing behind, clear errors, and finding a bundle by
// namespace, workload, pod or time. What goes into a bundle, and when sickbay archives
// one, is tested on the real node (real-node.test.ts), where a kubelet runs the execs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { archiveKey, parseArchiveKey } from '../../src/archive/archiver.js';
import { PART_BYTES, S3Store } from '../../src/archive/s3.js';
import { readArchiveConfig } from '../../src/core/config.js';
import { parseOwner } from '../../src/kube/pods.js';
import { S3Server } from '../../dev/s3-server.js';

const cli = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** Every file under a folder, relative to it. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)));

describe('the scene archive on a real S3-compatible server', { timeout: 180_000 }, () => {
  let s3: S3Server;
  let store: S3Store;
  const out = mkdtempSync(path.join(tmpdir(), 'sickbay-archives-'));
  before(async () => {
    s3 = await S3Server.start();
    store = new S3Store(readArchiveConfig(s3.env())!.store);
  });
  after(() => {
    s3?.stop();
    rmSync(out, { recursive: true, force: true });
  });
  const bucketDir = () => path.join(s3.dir, 'data', s3.bucket);
  const read = async (key: string) => {
    const chunks: Buffer[] = [];
    for await (const c of await store.get(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  it('streams a bundle larger than a part as a multipart upload, and one smaller in a single PUT; both read back whole', async () => {
    const big = randomBytes(2 * PART_BYTES + 777);
    const up = store.upload('sickbay/t/big.tar.gz');
    // Written in small pieces, as gzip hands them over.
    await pipeline(Readable.from((function* () {
      for (let i = 0; i < big.length; i += 64 * 1024) yield big.subarray(i, i + 64 * 1024);
    })()), up.stream);
    assert.deepEqual(await up.done, { bytes: big.length });
    assert.ok((await read('sickbay/t/big.tar.gz')).equals(big));
    const small = store.upload('sickbay/t/small.tar.gz');
    await pipeline(Readable.from([Buffer.from('a small scene')]), small.stream);
    assert.equal((await read('sickbay/t/small.tar.gz')).toString(), 'a small scene');
  });

  it('an upload that fails midway is aborted: no object, no parts left on the server', async () => {
    const up = store.upload('sickbay/t/broken.tar.gz');
    await assert.rejects(
      pipeline(Readable.from((function* () {
        yield randomBytes(PART_BYTES + 1000); // one part, on its way
        throw new Error('the pod went away mid-collection');
      })()), up.stream),
      /the pod went away/,
    );
    await assert.rejects(up.done, /the pod went away/);
    assert.ok(!(await store.list('sickbay/t/')).some((o) => o.key.endsWith('broken.tar.gz')));
    // The gateway keeps a multipart upload's parts under .sgwtmp/multipart in the bucket's
    // folder until it is completed or aborted; the part in flight when the stream failed
    // lands after the failure, and must be aborted too.
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual(filesUnder(bucketDir()).filter((f) => /multipart/.test(f)), []);
  });

  it('says clearly what is wrong: bad credentials, an untrusted certificate, a server that is down', async () => {
    const config = readArchiveConfig(s3.env())!.store;
    await assert.rejects(new S3Store({ ...config, secretAccessKey: 'wrong' }).put('sickbay/x', Buffer.from('x')), /S3 PUT s3:\/\/scenes\/sickbay\/x: 403 SignatureDoesNotMatch/);
    await assert.rejects(new S3Store({ ...config, caFile: undefined }).put('sickbay/x', Buffer.from('x')), /S3 PUT s3:\/\/scenes\/sickbay\/x: .*(self-signed|unable to verify|certificate)/i);
    await assert.rejects(new S3Store({ ...config, bucket: 'no-such-bucket' }).put('sickbay/x', Buffer.from('x')), /404 NoSuchBucket/);
    s3.kill();
    try {
      await assert.rejects(store.put('sickbay/x', Buffer.from('x')), /S3 PUT s3:\/\/scenes\/sickbay\/x: .*ECONNREFUSED/);
    } finally {
      await s3.revive();
    }
  });

  it('keys name the namespace, the workload and the pod, and read back', () => {
    const at = new Date('2026-12-07T02:13:14.567Z');
    const key = archiveKey('clusters/prod/', 'shop', parseOwner('Deployment/shop')!, 'shop-7d9f8c6b5-x2x4q', at);
    assert.equal(key, 'clusters/prod/shop/deployment-shop/shop-7d9f8c6b5-x2x4q_20261207T021314Z.tar.gz');
    assert.deepEqual(parseArchiveKey('clusters/prod/', key), { namespace: 'shop', workload: 'deployment/shop', pod: 'shop-7d9f8c6b5-x2x4q', at: new Date('2026-12-07T02:13:14Z') });
    assert.equal(archiveKey('', 'jobs', parseOwner('Pod/once')!, 'once', at), 'jobs/pod-once/once_20261207T021314Z.tar.gz');
    assert.equal(parseArchiveKey('sickbay/', 'sickbay/notes.txt'), undefined);
    assert.equal(parseOwner('shop'), undefined, 'an owner annotation without a kind');
  });

  it('`sickbay archives list` finds bundles by namespace, workload, pod and time; `get` downloads one and never overwrites', async () => {
    const day = 24 * 3600_000;
    const now = Date.now();
    const bundles = [
      ['shop', 'Deployment/shop', 'shop-aaa', now - 2 * day],
      ['shop', 'Deployment/shop', 'shop-bbb', now - 60_000],
      ['shop', 'StatefulSet/db', 'db-0', now - 30_000],
      ['billing', 'Deployment/api', 'api-ccc', now - 10_000],
    ] as const;
    for (const [ns, owner, pod, at] of bundles) await store.put(archiveKey('sickbay/', ns, parseOwner(owner)!, pod, new Date(at)), Buffer.from(`scene of ${pod}`));
    const run = (args: string[], env = s3.env()) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', import.meta.resolve('tsx'), cli, 'archives', ...args], { cwd: out, env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const pods = (stdout: string) => stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[3]);
    const all = await run(['list']);
    assert.deepEqual(pods(all.stdout), ['shop-aaa', 'shop-bbb', 'db-0', 'api-ccc'], `oldest first:\n${all.stdout}${all.stderr}`);
    assert.deepEqual(pods((await run(['list', '-n', 'shop'])).stdout), ['shop-aaa', 'shop-bbb', 'db-0']);
    assert.deepEqual(pods((await run(['list', '--workload', 'Deployment/shop', '--since', '24h'])).stdout), ['shop-bbb']);
    assert.deepEqual(pods((await run(['list', '--pod', 'db-0'])).stdout), ['db-0']);
    assert.match((await run(['list', '-n', 'nothing-here'])).stdout, /no scene bundles match/);
    const listed = (await run(['list', '--pod', 'api-ccc'])).stdout.trim().split('\n')[1]!;
    const key = listed.split(/\s+/).pop()!;
    const got = await run(['get', key]);
    assert.equal(got.code, 0, got.stderr);
    const file = path.join(out, key.split('/').pop()!);
    assert.equal(readFileSync(file, 'utf8'), 'scene of api-ccc');
    const again = await run(['get', key]);
    assert.equal(again.code, 1, 'an existing file is not replaced');
    assert.match(again.stderr, /not replacing an existing file \(pass -o <file>\)\n$/);
    assert.equal(statSync(file).size, 'scene of api-ccc'.length);
    const none = await run(['list'], {});
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no archive configured: set SICKBAY_ARCHIVE_ENDPOINT/);
    const missing = await run(['get', 'sickbay/shop/deployment-shop/nope_20261207T000000Z.tar.gz', '-o', path.join(out, 'nope.tar.gz')]);
    assert.equal(missing.code, 3, 'not found');
    assert.match(missing.stderr, /404 NoSuchKey/);
    const refused = await run(['list'], { ...s3.env(), SICKBAY_ARCHIVE_SECRET_ACCESS_KEY: 'not-the-key' });
    assert.equal(refused.code, 4, `refused: ${refused.stderr}`);
    assert.match(refused.stderr, /^sickbay: the archive at \S+ refused: /);
    const down = await run(['list'], { ...s3.env(), SICKBAY_ARCHIVE_ENDPOINT: 'https://127.0.0.1:1' });
    assert.equal(down.code, 5, `unreachable: ${down.stderr}`);
    assert.equal(down.stderr, 'sickbay: cannot reach the archive at https://127.0.0.1:1: ECONNREFUSED\n');
    assert.ok(!existsSync(path.join(out, 'nope.tar.gz')), 'no empty file left for a bundle that is not there');
  });
});
