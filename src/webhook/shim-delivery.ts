// How injected pods get the shim. The init container copies it into the pod's /sickbay
// volume: it works on every runtime, and costs every pod's start about a second on a
// kubelet (its own start, then the wait for the kubelet's next relist before the app's
// containers: bench/README.md). An `image` volume (GA in Kubernetes 1.36, on by default
// since 1.35) mounts the shim image's files read-only at /sickbay/bin instead: no init
// container. It needs the node's runtime to mount image volumes, and to mount them
// executable: containerd 2.1 and later do (a read-only bind of the image's layers);
// CRI-O mounts them noexec, which would leave the supervisor unable to start the app.
// The webhook does not know where a pod will run, so `auto` takes the image volume only
// while every node of the cluster can, and says which and why whenever that changes.
import type { V1Node } from '@kubernetes/client-node';
import type { ShimDelivery } from '../core/config.js';
import type { Logger } from '../core/log.js';

export const IMAGE_VOLUME_MIN_KUBELET: readonly [number, number] = [1, 35];
export const IMAGE_VOLUME_MIN_CONTAINERD: readonly [number, number] = [2, 1];

/** `v1.36.3`, `v1.35.0+k3s1`, `v1.35.2-eks-1234`: major and minor; undefined for anything else (kwok's `kwok-v0.8.0`). */
export function majorMinor(raw: string | undefined): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:[.+-]|$)/.exec(raw ?? '');
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const atLeast = (v: [number, number], min: readonly [number, number]) => v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);

/** Why this node cannot run a pod whose shim comes from an image volume, or undefined if it can. */
export function imageVolumeBlocker(node: Pick<V1Node, 'metadata' | 'status'>): string | undefined {
  const name = node.metadata?.name ?? '(unnamed)';
  const info = node.status?.nodeInfo;
  const kubelet = majorMinor(info?.kubeletVersion);
  if (!kubelet || !atLeast(kubelet, IMAGE_VOLUME_MIN_KUBELET)) return `node ${name} runs kubelet ${info?.kubeletVersion || '(unknown)'}, image volumes need ${IMAGE_VOLUME_MIN_KUBELET.join('.')} or later`;
  const runtime = info?.containerRuntimeVersion ?? '';
  const [kind, version] = runtime.includes('://') ? runtime.split('://', 2) : ['', runtime];
  const v = majorMinor(version);
  if (kind !== 'containerd' || !v || !atLeast(v, IMAGE_VOLUME_MIN_CONTAINERD)) {
    return `node ${name} runs ${runtime || 'an unknown runtime'}; sickbay runs the shim from an image volume only on containerd ${IMAGE_VOLUME_MIN_CONTAINERD.join('.')} or later`;
  }
  return undefined;
}

export interface DeliveryChoice {
  delivery: ShimDelivery;
  why: string;
}

/** The delivery `setting` gives with these nodes (`auto`: the image volume only if every node can mount it). */
export function chooseDelivery(setting: 'auto' | ShimDelivery, nodes: Iterable<Pick<V1Node, 'metadata' | 'status'>> | undefined): DeliveryChoice {
  if (setting !== 'auto') return { delivery: setting, why: `SICKBAY_SHIM_DELIVERY=${setting}` };
  if (!nodes) return { delivery: 'init-container', why: 'auto: sickbay does not watch nodes here (its controllers are off), so it cannot tell whether they mount image volumes' };
  let count = 0;
  let blocked: string | undefined;
  let others = 0;
  for (const n of nodes) {
    count++;
    const b = imageVolumeBlocker(n);
    if (!b) continue;
    if (blocked) others++;
    else blocked = b;
  }
  if (count === 0) return { delivery: 'init-container', why: 'auto: no nodes known yet' };
  if (blocked) return { delivery: 'init-container', why: `auto: ${blocked}${others ? ` (and ${others} other node${others > 1 ? 's' : ''})` : ''}` };
  return { delivery: 'image-volume', why: `auto: all ${count} node${count > 1 ? 's' : ''} run kubelet ${IMAGE_VOLUME_MIN_KUBELET.join('.')}+ and containerd ${IMAGE_VOLUME_MIN_CONTAINERD.join('.')}+` };
}

/** What of a node the choice reads: a heartbeat or a condition's change leaves it alone. */
const versions = (n: V1Node) => `${n.status?.nodeInfo?.kubeletVersion}|${n.status?.nodeInfo?.containerRuntimeVersion}`;

/**
 * The webhook's current choice, kept by the node informer's events: recomputed (once per
 * burst of events: the initial list adds every node at once) when a node joins, leaves or
 * changes its kubelet or runtime; logged, and its gauge set, when the delivery changes.
 */
export class ShimDeliveryTracker {
  private choice: DeliveryChoice;
  private pending = false;

  constructor(
    private readonly setting: 'auto' | ShimDelivery,
    private readonly nodes: { list(): Iterable<V1Node>; on(h: { add?: (n: V1Node) => void; update?: (n: V1Node, old: V1Node) => void; delete?: (n: V1Node) => void }, until?: AbortSignal): void } | undefined,
    private readonly o: { log: Logger; report?: (delivery: ShimDelivery) => void; until?: AbortSignal },
  ) {
    // With a node watch, none is known until the informer lists them.
    this.choice = chooseDelivery(setting, nodes ? [] : undefined);
    this.announce();
    if (setting === 'auto' && nodes) {
      const soon = () => {
        if (this.pending) return;
        this.pending = true;
        setImmediate(() => {
          this.pending = false;
          this.update();
        });
      };
      nodes.on({ add: soon, delete: soon, update: (n, old) => versions(n) !== versions(old) && soon() }, o.until);
    }
  }

  get current(): DeliveryChoice {
    return this.choice;
  }

  /** Recomputes from the node list (scheduled by the node events, `auto` only). */
  private update() {
    const next = chooseDelivery(this.setting, this.nodes!.list());
    const flipped = next.delivery !== this.choice.delivery;
    this.choice = next;
    if (flipped) this.announce();
    else this.o.log.debug('shim delivery unchanged', { delivery: next.delivery, why: next.why });
  }

  private announce() {
    this.o.report?.(this.choice.delivery);
    this.o.log.info(`injected pods get the shim by ${this.choice.delivery === 'image-volume' ? 'an image volume' : 'an init container'}`, { delivery: this.choice.delivery, why: this.choice.why });
  }
}
