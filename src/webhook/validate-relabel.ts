// The validating guards: pure decisions over the old and new pod of a CREATE or UPDATE.
// - The marks guard: only sickbay's own identity may set, change or remove its marks
//   (label sickbay.io/status and the controller's annotations) on any pod. A forged
//   mark would make sickbay deregister a healthy pod and run diagnostics in it.
// - The relabel guard: a quarantined pod must not drift back into service: its
//   ReplicaSet would adopt it again (and delete a healthy pod to keep the count), and its
//   Services would send it traffic.
import type { V1Pod } from '@kubernetes/client-node';
import { ANN_ISOLATE, ANN_ORIGINAL_LABELS, CONTROLLER_ANNOTATIONS, LABEL_STATUS, STATUS_QUARANTINED } from '../core/names.js';

export type Verdict = { allowed: true } | { allowed: false; message: string };

const ALLOWED: Verdict = { allowed: true };

/** Both guards, as the validating webhook applies them (oldPod is undefined on CREATE). */
export function validatePod(oldPod: V1Pod | undefined, newPod: V1Pod | undefined, username: string, sickbayUsername: string): Verdict {
  const marks = validateMarks(oldPod, newPod, username, sickbayUsername);
  return marks.allowed ? validateRelabel(oldPod, newPod, username, sickbayUsername) : marks;
}

/** The marks of sickbay a request sets, changes or removes. */
export function changedMarks(oldPod: V1Pod | undefined, newPod: V1Pod): string[] {
  const oldLabels = oldPod?.metadata?.labels ?? {};
  const newLabels = newPod.metadata?.labels ?? {};
  const oldAnn = oldPod?.metadata?.annotations ?? {};
  const newAnn = newPod.metadata?.annotations ?? {};
  const touched: string[] = [];
  if (newLabels[LABEL_STATUS] !== oldLabels[LABEL_STATUS]) touched.push(`label ${LABEL_STATUS}`);
  for (const key of CONTROLLER_ANNOTATIONS) if (newAnn[key] !== oldAnn[key]) touched.push(`annotation ${key}`);
  return touched;
}

export function validateMarks(oldPod: V1Pod | undefined, newPod: V1Pod | undefined, username: string, sickbayUsername: string): Verdict {
  if (!newPod || username === sickbayUsername) return ALLOWED;
  const touched = changedMarks(oldPod, newPod);
  if (touched.length === 0) return ALLOWED;
  const meta = newPod.metadata ?? oldPod?.metadata;
  const ref = `${meta?.namespace ?? ''}/${meta?.name || meta?.generateName || ''}`;
  if (oldPod?.metadata?.labels?.[LABEL_STATUS] === STATUS_QUARANTINED) {
    return {
      allowed: false,
      message:
        `pod ${ref} is quarantined by sickbay; only sickbay may change ${touched.join(', ')}. ` +
        `To end the quarantine run \`sickbay release ${ref}\` (it deletes the pod; its workload has already replaced it).`,
    };
  }
  return {
    allowed: false,
    message:
      `only sickbay may set ${touched.join(', ')} (pod ${ref}): they mark a pod sickbay quarantined, and sickbay acts on them ` +
      `(it removes the pod from service registries and runs diagnostics in it). To ask for a quarantine, annotate the pod ${ANN_ISOLATE}=<reason>.`,
  };
}

export function validateRelabel(oldPod: V1Pod | undefined, newPod: V1Pod | undefined, username: string, sickbayUsername: string): Verdict {
  if (!oldPod || !newPod) return ALLOWED;
  const wasQuarantined = oldPod.metadata?.labels?.[LABEL_STATUS] === STATUS_QUARANTINED;
  if (!wasQuarantined || username === sickbayUsername) return ALLOWED;

  const ref = `${oldPod.metadata?.namespace ?? ''}/${oldPod.metadata?.name ?? ''}`;
  const oldLabels = oldPod.metadata?.labels ?? {};
  const newLabels = newPod.metadata?.labels ?? {};
  const oldAnn = oldPod.metadata?.annotations ?? {};

  // The labels the controller removed are the ones that made the pod match its
  // ReplicaSet's and Services' selectors; putting any of them back re-matches.
  const removed = parseLabels(oldAnn[ANN_ORIGINAL_LABELS]);
  const restored = Object.keys(removed)
    .filter((k) => newLabels[k] === removed[k] && oldLabels[k] !== newLabels[k])
    .sort();
  if (restored.length > 0) {
    return {
      allowed: false,
      message:
        `pod ${ref} is quarantined by sickbay; adding back ${restored.map((k) => `${k}=${removed[k]}`).join(', ')} would put it back under ` +
        `the ReplicaSet and Services it was taken out of (the ReplicaSet would adopt it and delete a healthy pod). ` +
        `Inspect it as it is, or run \`sickbay release ${ref}\`.`,
    };
  }
  return ALLOWED;
}

function parseLabels(raw: string | undefined): Record<string, string> {
  if (!raw) return {};
  try {
    const v: unknown = JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // a garbled record protects nothing; the status label still does
  }
  return {};
}
