// What the node agent's settings mean: the names of its checks and how a list of watched
// processes is written. Read by the configuration (core/config.ts) and by the agent.

export const CHECK_NAMES = ['kubelet', 'conditions', 'network', 'processes'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface ProcessSpec {
  /** How it is reported: the spec as written, without its markers ("containerd|docker-containerd"). */
  name: string;
  /** Any of these processes will do. */
  names: string[];
  /** Checked only once seen on this node ("dockerd?" on a containerd-only node). */
  optional: boolean;
  /**
   * Where it must run: `host`, the PID namespace of the /proc root's own processes (a
   * container running a process named containerd does not count), or `pod`, any (Calico's
   * processes run in the calico-node pod).
   */
  scope: 'host' | 'pod';
}

/**
 * "dockerd?,containerd|docker-containerd,kubelet,felix@pod?": names separated by | are
 * alternatives; @pod lets the process run in a container's PID namespace (default: the
 * host's only); a trailing ? marks a process checked once seen.
 */
export function parseProcessSpecs(list: string): ProcessSpec[] {
  const specs: ProcessSpec[] = [];
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([\w.+|-]+?)(@pod)?(\?)?$/.exec(raw);
    const names = m?.[1]!.split('|') ?? [];
    if (!m || names.some((n) => !/^[\w.+-]+$/.test(n))) throw new Error(`not a process spec (name[|name...][@pod][?]): ${JSON.stringify(raw)}`);
    specs.push({ name: m[1]!, names, optional: !!m[3], scope: m[2] ? 'pod' : 'host' });
  }
  return specs;
}
