// `sickbay release`: the way to end a quarantine now. By default it asks sickbay's
// controller (the `sickbay.io/release` annotation) and waits: the controller archives the
// scene first when an archive is configured, then deletes the pod, as at its TTL. With
// --now it deletes the pod itself, scene and all, without an archive. Either way the
// workload replaced the pod when it was quarantined.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { codeOf, mergePatch } from '../kube/api.js';
import { ANN_ARCHIVE, ANN_RELEASE, LABEL_STATUS, STATUS_QUARANTINED } from '../core/names.js';
import { sleep } from '../util/wait.js';
import { apiFailure, CliError, EXIT } from './commands.js';

export interface ReleaseOptions {
  /** Delete the pod here and now, without an archive. */
  now?: boolean;
  /** How long to wait for sickbay to delete it (default 2 min). */
  waitMs?: number;
}

/** `<namespace>/<pod>`, or `<pod>` in `namespace`; `-n` and a different `<namespace>/` is a usage error. */
export function parsePodRef(arg: string, namespace: string, namespaceGiven = false): string {
  const m = /^(?:([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/)?([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(arg);
  if (!m) throw new CliError(`${JSON.stringify(arg)} is not a pod name (<pod> or <namespace>/<pod>)`, EXIT.usage);
  if (m[1] && namespaceGiven && m[1] !== namespace) throw new CliError(`${arg} names namespace ${m[1]}, -n says ${namespace}`, EXIT.usage);
  return `${m[1] ?? namespace}/${m[3]}`;
}

/** A failed call about the pod: a conflict or a refused write is refused too (the pod changed, or may not be). */
const podFailure = (err: unknown, doing: string) => apiFailure(err, doing, { notFound: 'no such pod', refusedCodes: [409, 422] });

export async function release(kc: KubeConfig, ref: string, o: ReleaseOptions = {}): Promise<string> {
  const [namespace, name] = parsePodRef(ref, 'default').split('/') as [string, string];
  const core = kc.makeApiClient(CoreV1Api);
  let pod: V1Pod;
  try {
    pod = await core.readNamespacedPod({ name, namespace });
  } catch (err) {
    throw podFailure(err, `pod ${ref}`);
  }
  if (pod.metadata?.labels?.[LABEL_STATUS] !== STATUS_QUARANTINED) throw new CliError(`pod ${ref} is not quarantined by sickbay; nothing to release`, EXIT.wrongState);
  const uid = pod.metadata?.uid;
  if (o.now) {
    try {
      await core.deleteNamespacedPod({ name, namespace, body: { preconditions: { uid } } });
    } catch (err) {
      throw podFailure(err, `cannot delete pod ${ref}`);
    }
    return `released ${ref}: the pod is being deleted, its scene with it, without an archive (its workload replaced it when it was quarantined)\n`;
  }
  try {
    await core.patchNamespacedPod({ name, namespace, body: { metadata: { uid, annotations: { [ANN_RELEASE]: new Date().toISOString() } } } }, mergePatch);
  } catch (err) {
    throw podFailure(err, `cannot ask sickbay to release ${ref} (annotate ${ANN_RELEASE})`);
  }
  const deadline = Date.now() + (o.waitMs ?? 120_000);
  let archive: string | undefined;
  for (;;) {
    const now = await core.readNamespacedPod({ name, namespace }).catch((err) => (codeOf(err) === 404 ? undefined : Promise.reject(err)));
    if (now?.metadata?.uid === uid) archive = now?.metadata?.annotations?.[ANN_ARCHIVE] ?? archive;
    const gone = !now || now.metadata?.uid !== uid || !!now.metadata?.deletionTimestamp;
    const record = archive ? (JSON.parse(archive) as { status?: string; url?: string; error?: string; attempts?: number }) : undefined;
    if (gone) {
      const where = record?.status === 'ok' ? `its scene is archived at ${record.url}` : record?.status === 'deleted-without' ? `its scene could NOT be archived (${record.error})` : 'no archive is configured, its scene goes with it';
      return `released ${ref}: sickbay deleted the pod; ${where} (its workload replaced it when it was quarantined)\n`;
    }
    if (Date.now() > deadline) {
      const why = record?.status === 'failed' ? `its scene could not be archived yet (attempt ${record.attempts}: ${record.error}); sickbay keeps the pod and tries again` : 'is sickbay running, with its controllers?';
      throw new CliError(`sickbay has not deleted ${ref} yet: ${why}. \`sickbay release ${ref} --now\` deletes it without an archive.`, EXIT.failed);
    }
    await sleep(1000);
  }
}
