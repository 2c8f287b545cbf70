// `sickbay node protect <node> --for <duration>` and `sickbay node restore <node>`.
import { CoordinationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../core/log.js';
import { codeOf } from '../kube/api.js';
import { EventGate, EventRecorder } from '../kube/events.js';
import { lockName, readLock, restoreNode, setLock } from '../nodes/node-actions.js';
import { apiFailure } from './commands.js';

async function nodeExists(core: CoreV1Api, name: string) {
  try {
    return await core.readNode({ name });
  } catch (err) {
    throw apiFailure(err, `node ${JSON.stringify(name)}`);
  }
}

/** Sets the node's protection lock for `seconds` from now (0 lifts it). */
export async function protect(kc: KubeConfig, o: { namespace: string; node: string; seconds: number; who?: string }): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const coord = kc.makeApiClient(CoordinationV1Api);
  const node = await nodeExists(core, o.node);
  const events = new EventRecorder(core, { gate: new EventGate(), log: createLogger('warn') });
  const ref = { apiVersion: 'v1', kind: 'Node', name: o.node, uid: node.metadata?.uid };
  if (o.seconds === 0) {
    try {
      await coord.deleteNamespacedLease({ namespace: o.namespace, name: lockName(o.node) });
    } catch (err) {
      if (codeOf(err) === 404) return `node ${o.node} had no protection lock\n`;
      throw apiFailure(err, `cannot lift the lock of ${o.node}`);
    }
    await events.record(ref, 'Normal', 'ProtectionLifted', `protection lock lifted by ${o.who ?? 'sickbay node protect'}`);
    return `node ${o.node}: protection lifted; it may be isolated again when faulty\n`;
  }
  const previous = await readLock(coord, o.namespace, o.node);
  let taken;
  try {
    taken = await setLock(coord, o.namespace, o.node, { durationMs: o.seconds * 1000, holder: o.who ?? 'sickbay-node-protect', reason: 'protected by hand', ifFree: false });
  } catch (err) {
    throw apiFailure(err, `cannot set the lock of ${o.node} (in namespace ${o.namespace})`);
  }
  const until = taken.lock.until.toISOString();
  await events.record(ref, 'Normal', 'Protected', `protected from isolation until ${until} by ${o.who ?? 'sickbay node protect'}`);
  const before = previous && previous.until.getTime() > Date.now() ? ` (it was protected until ${previous.until.toISOString()})` : '';
  return `node ${o.node} protected from isolation until ${until}${before}\n`;
}

/** Lifts an isolation: removes the taint and the label. The lock stays. */
export async function restore(kc: KubeConfig, o: { namespace: string; node: string; who?: string }): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const node = await nodeExists(core, o.node);
  let changed: boolean;
  try {
    changed = await restoreNode(core, o.node);
  } catch (err) {
    throw apiFailure(err, `cannot restore node ${o.node}`);
  }
  if (!changed) return `node ${o.node} is not isolated; nothing to restore\n`;
  await new EventRecorder(core, { gate: new EventGate(), log: createLogger('warn') }).record({ apiVersion: 'v1', kind: 'Node', name: o.node, uid: node.metadata?.uid }, 'Normal', 'NodeRestored', `isolation lifted by ${o.who ?? 'sickbay node restore'}`);
  const lock = await readLock(kc.makeApiClient(CoordinationV1Api), o.namespace, o.node).catch(() => undefined);
  const note = lock && lock.until.getTime() > Date.now() ? `; its protection lock holds until ${lock.until.toISOString()}, so it is not isolated again before then` : '';
  return `node ${o.node} restored: taint and label removed${note}\n`;
}
