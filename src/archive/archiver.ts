// The scene archive: before sickbay deletes a scene (a quarantined pod at its TTL or on
// a release, a failing pod evicted beyond its workload's quota), it streams the pod's
// bundle (what `sickbay collect` writes) to an S3-compatible object store. Keys name the
// namespace, the workload and the pod, so a bundle is found by any of them or by time:
//   <prefix><namespace>/<kind>-<workload>/<pod>_<yyyymmddThhmmssZ>.tar.gz
import type { KubeConfig } from '@kubernetes/client-node';
import { collect, stamp } from '../cli/collect.js';
import type { OwnerInfo } from '../kube/pods.js';
import type { ArchiveConfig } from '../core/config.js';
import { S3Store } from './s3.js';

export interface ArchivedScene {
  key: string;
  /** s3://bucket/key */
  url: string;
  /** Compressed bytes stored. */
  bytes: number;
  /** Files in the bundle, and what could not be collected. */
  files: number;
  missing: number;
}

/** The key of a pod's bundle. */
export function archiveKey(prefix: string, namespace: string, owner: OwnerInfo, pod: string, at: Date): string {
  return `${prefix}${namespace}/${owner.kind.toLowerCase()}-${owner.name}/${pod}_${stamp(at)}.tar.gz`;
}

/** What a key says, or undefined for a key that is not a bundle's. */
export function parseArchiveKey(prefix: string, key: string): { namespace: string; workload: string; pod: string; at: Date } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const m = /^([a-z0-9-]+)\/([a-z]+)-([^/]+)\/([a-z0-9.-]+)_(\d{8}T\d{6}Z)\.tar\.gz$/.exec(key.slice(prefix.length));
  if (!m) return undefined;
  const [, namespace, kind, name, pod, t] = m as unknown as [string, string, string, string, string, string];
  const at = new Date(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`);
  return { namespace, workload: `${kind}/${name}`, pod, at };
}

export class SceneArchiver {
  readonly store: S3Store;

  /**
   * `agentNamespace`: where sickbay's node agents run (its own namespace): a scene's
   * checkpoint archives are read from its node through the agent there, within the
   * bundle's size bound (the chart's scope policy lets sickbay exec only that read there).
   */
  constructor(
    private readonly kc: KubeConfig,
    private readonly o: ArchiveConfig,
    private readonly agentNamespace?: string,
  ) {
    this.store = new S3Store(o.store);
  }

  get maxDelayMs() {
    return this.o.maxDelayMs;
  }

  get overQuotaKeepMs() {
    return this.o.overQuotaKeepMs;
  }

  /** Streams the pod's bundle to the store; throws (nothing left behind) if it cannot. */
  async archive(pod: { namespace: string; name: string; owner: OwnerInfo }, now = new Date(), timeoutMs = 10 * 60_000): Promise<ArchivedScene> {
    const key = archiveKey(this.o.store.prefix, pod.namespace, pod.owner, pod.name, now);
    const up = this.store.upload(key);
    const deadline = setTimeout(() => up.stream.destroy(new Error(`the archive did not finish within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    try {
      const r = await collect(this.kc, { namespace: pod.namespace, pod: pod.name, out: up.stream, maxBytes: this.o.maxBytes, now, checkAccess: false, execTimeoutMs: timeoutMs, checkpointsFrom: this.agentNamespace });
      const { bytes } = await up.done;
      return { key, url: this.store.where(key), bytes, files: r.files, missing: r.missing.length };
    } catch (err) {
      up.stream.destroy(err as Error);
      throw err;
    } finally {
      clearTimeout(deadline);
    }
  }
}
