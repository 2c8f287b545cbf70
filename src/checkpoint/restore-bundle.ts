// `sickbay checkpoint restore-bundle`: turns a checkpoint archive into a runc bundle, so
// the checkpointed container can be restored, paused in a debugger or inspected live on
// a machine of one's own (`runc restore`, CRIU on the PATH). containerd does not restore
// a checkpoint through CRI; runc does, given:
//   - the image's root filesystem with the container's changes (rootfs-diff.tar) on top,
//   - the container's OCI spec (spec.dump) with what named the node changed: no
//     namespace paths of the pod's sandbox (the network namespace becomes one of the
//     caller's, which CRIU needs because the dumped one was external), the pod's volumes
//     the processes use from folders of the caller's (--volume: /sickbay, where the
//     supervisor runs from, is the `sickbay/` folder of `sickbay collect`'s bundle), empty
//     stand-ins for the other bind mounts (hosts, resolv.conf, the ServiceAccount token:
//     not carried over), and a cgroup of its own,
//   - CRIU's images (checkpoint/).
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Files the kubelet and the runtime bind into every container; anything else bound is a folder. */
const BOUND_FILES = new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/dev/termination-log']);

export interface RestoreBundleOptions {
  /** The image's root filesystem: a folder, or the image as a docker-archive tarball (`docker save`, `ctr image export`). */
  rootfs: string;
  /** The bundle's folder (created; must not exist). */
  out: string;
  /** The network namespace to restore into (`ip netns add <name>`). */
  netns: string;
  /** The container's name in runc (and its cgroup, /sickbay-restore-<name>). */
  name: string;
  /** Bind mounts' destinations → folders of the caller's holding what the volume held (CRIU needs the files the processes have open). */
  volumes?: Record<string, string>;
}

interface OciSpec {
  root?: { path: string; readonly?: boolean };
  mounts?: Array<{ destination: string; type?: string; source?: string; options?: string[] }>;
  annotations?: Record<string, string>;
  linux?: { namespaces?: Array<{ type: string; path?: string }>; cgroupsPath?: string };
}

/** The spec.dump of a checkpoint, adjusted to be restored here (see the file's comment). */
export function restoreSpec(spec: OciSpec, o: { netns: string; name: string; mounts: string; volumes?: Record<string, string> }): { spec: OciSpec; standIns: Array<{ path: string; file: boolean }> } {
  const out = structuredClone(spec);
  out.root = { path: 'rootfs', readonly: false };
  const standIns: Array<{ path: string; file: boolean }> = [];
  for (const m of out.mounts ?? []) {
    const bind = m.type === 'bind' || (m.options ?? []).some((x) => x === 'bind' || x === 'rbind');
    if (!bind) continue;
    const given = o.volumes?.[m.destination];
    if (given) {
      m.source = path.resolve(given);
      continue;
    }
    const file = BOUND_FILES.has(m.destination);
    m.source = path.join(o.mounts, m.destination);
    standIns.push({ path: m.source, file });
  }
  if (out.linux) {
    out.linux.namespaces = (out.linux.namespaces ?? []).map((n) => (n.type === 'network' ? { type: 'network', path: `/var/run/netns/${o.netns}` } : { type: n.type }));
    out.linux.cgroupsPath = `/sickbay-restore-${o.name}`;
  }
  delete out.annotations;
  return { spec: out, standIns };
}

/** The image's layers, in order, from a docker-archive tarball. */
async function imageLayers(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-xOf', tarball, 'manifest.json'], { maxBuffer: 16 << 20 });
  const manifest = JSON.parse(stdout) as Array<{ Layers?: string[] }>;
  const layers = manifest[0]?.Layers;
  if (!layers?.length) throw new Error(`${tarball}: no layers in its manifest.json (a docker-archive image is expected)`);
  return layers;
}

/** Writes the bundle; returns the commands that restore it. */
export async function restoreBundle(archive: string, o: RestoreBundleOptions): Promise<{ bundle: string; commands: string[] }> {
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/.test(o.name)) throw new Error(`--name ${JSON.stringify(o.name)}: letters, digits, . _ - (runc's container names)`);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(o.netns)) throw new Error(`--netns ${JSON.stringify(o.netns)}: a network namespace name (ip netns add <name>)`);
  if (existsSync(o.out)) throw new Error(`${o.out} exists; give a new folder`);
  statSync(archive); // ENOENT before anything is made
  const out = path.resolve(o.out);
  const images = path.join(out, 'checkpoint-archive');
  const rootfs = path.join(out, 'rootfs');
  mkdirSync(images, { recursive: true });
  try {
    await run('tar', ['-xf', archive, '-C', images]);
    if (!existsSync(path.join(images, 'spec.dump')) || !existsSync(path.join(images, 'checkpoint'))) throw new Error(`${archive} is not a container checkpoint (no spec.dump or checkpoint/)`);
    if (statSync(o.rootfs).isDirectory()) cpSync(o.rootfs, rootfs, { recursive: true, verbatimSymlinks: true });
    else {
      mkdirSync(rootfs);
      for (const layer of await imageLayers(o.rootfs)) {
        await run('sh', ['-c', 'tar -xOf "$0" "$1" | tar -x -C "$2"', o.rootfs, layer, rootfs]);
      }
    }
    // The container's changes: written files, then the ones it deleted.
    if (existsSync(path.join(images, 'rootfs-diff.tar'))) await run('tar', ['-xf', path.join(images, 'rootfs-diff.tar'), '-C', rootfs]);
    const deleted = path.join(images, 'deleted.files');
    if (existsSync(deleted)) {
      for (const f of JSON.parse(readFileSync(deleted, 'utf8')) as string[]) {
        const target = path.resolve(rootfs, `.${path.resolve('/', f)}`);
        if (target.startsWith(`${rootfs}/`)) rmSync(target, { recursive: true, force: true });
      }
    }
    const dumped = JSON.parse(readFileSync(path.join(images, 'spec.dump'), 'utf8')) as OciSpec;
    for (const [dest, folder] of Object.entries(o.volumes ?? {})) {
      if (!dumped.mounts?.some((m) => m.destination === dest)) throw new Error(`--volume ${dest}: the container has no mount there (it has ${dumped.mounts?.map((m) => m.destination).join(', ')})`);
      if (!statSync(folder).isDirectory()) throw new Error(`--volume ${dest}=${folder}: not a folder`);
    }
    const { spec, standIns } = restoreSpec(dumped, { netns: o.netns, name: o.name, mounts: path.join(out, 'mounts'), volumes: o.volumes });
    for (const s of standIns) {
      if (s.file) {
        mkdirSync(path.dirname(s.path), { recursive: true });
        writeFileSync(s.path, '');
      } else mkdirSync(s.path, { recursive: true });
    }
    writeFileSync(path.join(out, 'config.json'), `${JSON.stringify(spec, null, 2)}\n`);
  } catch (err) {
    rmSync(out, { recursive: true, force: true });
    throw err;
  }
  return {
    bundle: out,
    commands: [
      `ip netns add ${o.netns}`,
      `runc restore --bundle ${out} --image-path ${images}/checkpoint --work-path ${out}/work --detach ${o.name} </dev/null >${out}/restored.log 2>&1`,
      `runc list; runc exec ${o.name} ps    # the restored processes, their memory as it was`,
      `runc kill ${o.name} KILL; runc delete ${o.name}; ip netns del ${o.netns}`,
    ],
  };
}
