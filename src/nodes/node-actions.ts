// What is done to a node, by the controller and by `sickbay node protect|restore`:
// - the protection lock: a Lease in sickbay's namespace, one per node, valid until
//   renewTime + leaseDurationSeconds. While it is valid the node is not isolated.
//   Isolation takes it, so a node is isolated at most once per window; it survives
//   restarts because it lives in the cluster (`kubectl get leases -l sickbay.io/node-lock`).
// - isolation: the NoExecute taint and the node-status label in one write, guarded by
//   the Node's resourceVersion so a concurrent change of its taints is never lost;
// - restore: both removed, the same way.
import { createHash } from 'node:crypto';
import { type CoordinationV1Api, type CoreV1Api, type V1Lease, V1MicroTime, type V1Node, type V1Taint } from '@kubernetes/client-node';
import { callWithin, codeOf, mergePatch } from '../kube/api.js';
import { LABEL_NODE_STATUS, NODE_TAINT_ISOLATED, PREFIX } from '../core/names.js';

export const LABEL_NODE_LOCK = `${PREFIX}/node-lock`;
const ANN_LOCK_NODE = `${PREFIX}/node`;
const ANN_LOCK_REASON = `${PREFIX}/reason`;
/**
 * On the controller's locks: "isolating" from the moment the lock is taken until the
 * taint is written, then "isolated". A leader that dies in between leaves "isolating"
 * on an untainted node, which the next leader finds and finishes or gives back.
 */
const ANN_LOCK_PHASE = `${PREFIX}/phase`;
export type LockPhase = 'isolating' | 'isolated';
const CALL_MS = 10_000;

/** Lease names are DNS subdomains of at most 253 characters; long node names are hashed. */
export function lockName(node: string): string {
  const name = `sickbay-node-lock.${node}`;
  return name.length <= 253 ? name : `sickbay-node-lock.${createHash('sha256').update(node).digest('hex').slice(0, 32)}`;
}

export interface ProtectionLock {
  node: string;
  holder: string;
  reason: string;
  until: Date;
  phase?: string;
  lease: V1Lease;
}

function toLock(node: string, lease: V1Lease): ProtectionLock {
  const renew = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
  return {
    node,
    holder: lease.spec?.holderIdentity ?? '',
    reason: lease.metadata?.annotations?.[ANN_LOCK_REASON] ?? '',
    phase: lease.metadata?.annotations?.[ANN_LOCK_PHASE],
    until: new Date(renew + (lease.spec?.leaseDurationSeconds ?? 0) * 1000),
    lease,
  };
}

export async function readLock(coord: CoordinationV1Api, namespace: string, node: string): Promise<ProtectionLock | undefined> {
  try {
    return toLock(node, await callWithin(CALL_MS, 'lock read', (o) => coord.readNamespacedLease({ namespace, name: lockName(node) }, o)));
  } catch (err) {
    if (codeOf(err) === 404) return undefined;
    throw err;
  }
}

/** Every node lock in the namespace (by their label). */
export async function listLocks(coord: CoordinationV1Api, namespace: string): Promise<ProtectionLock[]> {
  const list = await callWithin(CALL_MS, 'lock list', (o) => coord.listNamespacedLease({ namespace, labelSelector: `${LABEL_NODE_LOCK}=true` }, o));
  return list.items.map((l) => toLock(l.metadata?.annotations?.[ANN_LOCK_NODE] ?? '', l)).filter((l) => l.node !== '');
}

/** Records how far the isolation the lock was taken for has got. */
export async function setLockPhase(coord: CoordinationV1Api, namespace: string, lock: ProtectionLock, phase: LockPhase): Promise<void> {
  await callWithin(CALL_MS, 'lock phase', (o) => coord.patchNamespacedLease({ namespace, name: lockName(lock.node), body: { metadata: { annotations: { [ANN_LOCK_PHASE]: phase } } } }, o), mergePatch);
}

export const lockValid = (lock: ProtectionLock | undefined, now = Date.now()) => !!lock && lock.until.getTime() > now;

/**
 * Sets the lock for `durationMs` from now. With `ifFree`, only when no valid lock is
 * there: returns the valid lock found instead ("held"). A concurrent writer makes this
 * throw a 409, which callers treat as "try again later".
 */
export async function setLock(
  coord: CoordinationV1Api,
  namespace: string,
  node: string,
  o: { durationMs: number; holder: string; reason: string; ifFree: boolean; phase?: LockPhase },
): Promise<{ result: 'taken' | 'held'; lock: ProtectionLock }> {
  const now = new V1MicroTime(Date.now());
  const existing = await readLock(coord, namespace, node);
  if (o.ifFree && existing && lockValid(existing)) return { result: 'held', lock: existing };
  const body: V1Lease = {
    metadata: {
      name: lockName(node),
      namespace,
      labels: { [LABEL_NODE_LOCK]: 'true', 'app.kubernetes.io/managed-by': 'sickbay' },
      annotations: { [ANN_LOCK_NODE]: node, [ANN_LOCK_REASON]: o.reason, ...(o.phase ? { [ANN_LOCK_PHASE]: o.phase } : {}) },
      ...(existing ? { resourceVersion: existing.lease.metadata?.resourceVersion } : {}),
    },
    spec: { holderIdentity: o.holder, leaseDurationSeconds: Math.max(1, Math.round(o.durationMs / 1000)), acquireTime: now, renewTime: now },
  };
  const lease = existing
    ? await callWithin(CALL_MS, 'lock update', (o) => coord.replaceNamespacedLease({ namespace, name: lockName(node), body }, o))
    : await callWithin(CALL_MS, 'lock create', (o) => coord.createNamespacedLease({ namespace, body }, o));
  return { result: 'taken', lock: toLock(node, lease) };
}

export const isIsolated = (node: V1Node | undefined) => !!node?.spec?.taints?.some((t) => t.key === NODE_TAINT_ISOLATED && t.effect === 'NoExecute');

/**
 * One write of a Node's labels and taints, guarded by its resourceVersion so a
 * concurrent change of its taints is never lost. On a conflict (the node lifecycle
 * controller and kubelets update Nodes all the time) it reads the Node afresh and asks
 * `change` again; `change` returning undefined means there is nothing (left) to do.
 */
async function patchNodeGuarded(
  core: CoreV1Api,
  name: string,
  start: V1Node | undefined,
  what: string,
  change: (node: V1Node) => { labels: Record<string, string | null>; taints: V1Taint[] } | undefined,
): Promise<{ node: V1Node; patched: boolean }> {
  let node = start;
  for (let attempt = 0; ; attempt++) {
    node ??= await callWithin(CALL_MS, 'node read', (o) => core.readNode({ name }, o));
    const c = change(node);
    if (!c) return { node, patched: false };
    try {
      // null deletes a label in a merge patch; the taints list is replaced whole.
      const body = { metadata: { resourceVersion: node.metadata?.resourceVersion, labels: c.labels }, spec: { taints: c.taints } };
      return { node: await callWithin(CALL_MS, what, (o) => core.patchNode({ name, body }, o), mergePatch), patched: true };
    } catch (err) {
      if (codeOf(err) !== 409 || attempt >= 4) throw err;
      node = undefined;
    }
  }
}

const withoutOurTaint = (node: V1Node) => (node.spec?.taints ?? []).filter((t) => t.key !== NODE_TAINT_ISOLATED);

/** Taint + label in one guarded write (see patchNodeGuarded). */
export async function isolateNode(core: CoreV1Api, node: V1Node, reason: string): Promise<V1Node> {
  const value = reason.slice(0, 63).replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  const res = await patchNodeGuarded(core, node.metadata!.name!, node, 'node taint', (n) =>
    isIsolated(n) ? undefined : { labels: { [LABEL_NODE_STATUS]: 'isolated' }, taints: [...withoutOurTaint(n), { key: NODE_TAINT_ISOLATED, value, effect: 'NoExecute', timeAdded: new Date() }] },
  );
  return res.node;
}

/** Gives back a lock this process just took, when the isolation it was taken for failed. */
export async function releaseLock(coord: CoordinationV1Api, namespace: string, lock: ProtectionLock): Promise<void> {
  const { uid, resourceVersion } = lock.lease.metadata ?? {};
  await callWithin(CALL_MS, 'lock release', (o) => coord.deleteNamespacedLease({ namespace, name: lockName(lock.node), body: { preconditions: { uid, resourceVersion } } }, o)).catch((err) => {
    if (codeOf(err) !== 404 && codeOf(err) !== 409) throw err;
  });
}

/** Removes the taint and the label in one guarded write. False if there was nothing to remove. */
export async function restoreNode(core: CoreV1Api, name: string): Promise<boolean> {
  const res = await patchNodeGuarded(core, name, undefined, 'node restore', (n) =>
    !isIsolated(n) && n.metadata?.labels?.[LABEL_NODE_STATUS] === undefined ? undefined : { labels: { [LABEL_NODE_STATUS]: null }, taints: withoutOurTaint(n) },
  );
  return res.patched;
}
