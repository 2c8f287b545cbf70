// "Should this pod be quarantined, and how": plain functions over plain objects.
import type { V1LabelSelector } from '@kubernetes/client-node';
import { ANN_ISOLATE } from '../core/names.js';
import { type AnyPod, isPodReady, notReadySince, type OwnerInfo, wasEverReady } from '../kube/pods.js';

export type Trigger =
  /** `since`: from when time-to-quarantine counts; `failedAt`: when the failure began (both sickbay's clock). */
  | { kind: 'annotation' | 'alert'; reason: string; since: number; failedAt: number }
  | { kind: 'not-ready'; reason: string; since: number; failedAt: number }
  | { kind: 'wait'; afterMs: number }
  | { kind: 'none' };

/**
 * How long a request waits after sickbay first sees it, so the requests of one alert group
 * (or one person's loop) are all in the cache when the first is decided: the systemic
 * guard then counts them together.
 */
export const REQUEST_SETTLE_MS = 500;

/**
 * An alert's request (`sickbay.io/isolate` written by POST /alerts) acts and counts the
 * pod as failing for this long after sickbay saw it; a resolved alert withdraws it sooner.
 * A later firing writes it again, and it counts anew.
 */
export const ALERT_REQUEST_TTL_MS = 60 * 60_000;

/** A request POST /alerts wrote (`alert <name> ...`), not a person's. */
export const isAlertRequest = (request: string) => request.trim().startsWith('alert');

/**
 * After a node comes back, how long its pods have to report Ready again before their own
 * grace period starts: a kubelet that resumes re-syncs pod statuses within its 10 s sync
 * period, and one that restarted runs each readiness probe again from scratch.
 */
export const NODE_BACK_SETTLE_MS = 30_000;

export interface TriggerContext {
  seenReady: boolean;
  firstSeenNotReady?: number;
  requestSeenAt?: number;
  /**
   * When sickbay saw the pod's node turn Ready again after it was not: the pods' own
   * statuses follow some seconds later, and the time the node was away is not the pod's.
   */
  nodeBackAt?: number;
}

export function quarantineTrigger(pod: AnyPod, now: number, graceMs: number, o: TriggerContext): Trigger {
  const request = pod.metadata?.annotations?.[ANN_ISOLATE];
  const seen = o.requestSeenAt ?? now;
  // An alert's request past its TTL is stale: the pod is judged as if it had none.
  if (request !== undefined && !(isAlertRequest(request) && now - seen >= ALERT_REQUEST_TTL_MS)) {
    if (seen + REQUEST_SETTLE_MS > now) return { kind: 'wait', afterMs: seen + REQUEST_SETTLE_MS - now };
    const reason = request.trim() || 'requested by annotation';
    return { kind: isAlertRequest(reason) ? 'alert' : 'annotation', reason, since: seen, failedAt: seen };
  }
  if (isPodReady(pod) || !wasEverReady(pod, o.seenReady)) return { kind: 'none' };
  const onset = notReadySince(pod, now, o.firstSeenNotReady);
  if (onset === undefined) return { kind: 'none' };
  const since = Math.max(onset, (o.nodeBackAt ?? -Infinity) + NODE_BACK_SETTLE_MS);
  const left = since + graceMs - now;
  if (left > 0) return { kind: 'wait', afterMs: left };
  // Time-to-quarantine counts from when sickbay could first act: the end of the grace
  // period, or, if later, when its watch first saw the pod NotReady. The condition's time
  // alone has one-second resolution (it would add up to a second) and includes the
  // kubelet's and the watch's delays, which are not sickbay's.
  const due = Math.max(since + graceMs, o.firstSeenNotReady ?? -Infinity);
  return { kind: 'not-ready', reason: `NotReady for ${Math.round((now - since) / 1000)}s (grace ${Math.round(graceMs / 1000)}s)`, since: due, failedAt: since };
}

export function selectorMatches(labels: Record<string, string>, selector: V1LabelSelector | undefined): boolean {
  if (!selector) return false;
  const ml = Object.entries(selector.matchLabels ?? {});
  const me = selector.matchExpressions ?? [];
  if (ml.length === 0 && me.length === 0) return false; // an empty selector selects nothing here
  for (const [k, v] of ml) if (labels[k] !== v) return false;
  for (const e of me) {
    const has = Object.hasOwn(labels, e.key);
    const v = labels[e.key];
    switch (e.operator) {
      case 'In':
        if (!has || !(e.values ?? []).includes(v!)) return false;
        break;
      case 'NotIn':
        if (has && (e.values ?? []).includes(v!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/**
 * The labels to remove so the pod matches none of the given selectors: every key a
 * matching selector requires to be present (matchLabels, In, Exists). NotIn and
 * DoesNotExist cannot be broken by removing a label. sickbay's own keys are never removed.
 */
export function labelsToStrip(labels: Record<string, string>, selectors: V1LabelSelector[]): string[] {
  const keys = new Set<string>();
  for (const s of selectors) {
    if (!selectorMatches(labels, s)) continue;
    for (const k of Object.keys(s.matchLabels ?? {})) keys.add(k);
    for (const e of s.matchExpressions ?? []) if (e.operator === 'In' || e.operator === 'Exists') keys.add(e.key);
  }
  return [...keys].filter((k) => Object.hasOwn(labels, k) && !k.startsWith('sickbay.io/')).sort();
}


/** Owners whose pods sickbay quarantines by relabelling: relabelling makes them start a replacement. */
export const REPLACING_OWNERS = new Set(['Deployment', 'ReplicaSet', 'Pod']);

export const UNSUPPORTED_OWNER_REASON: Record<string, string> = {
  StatefulSet: 'a StatefulSet does not replace a relabelled pod (its identity is its name); sickbay leaves it to Kubernetes',
  DaemonSet: 'a DaemonSet would start a second pod on the same node beside the relabelled one; sickbay leaves it to Kubernetes',
  Job: 'a Job has its own retry policy; sickbay leaves it to Kubernetes',
  CronJob: 'a Job has its own retry policy; sickbay leaves it to Kubernetes',
};

export type Decision =
  /** `systemic`: most of the workload fails together; this one is kept as the scene, nothing is deleted. */
  | { action: 'quarantine'; systemic?: string }
  | { action: 'delete'; reason: string }
  | { action: 'skip'; reason: 'systemic' | 'rate-limited' | 'unsupported-owner' | 'backoff'; message: string };

/**
 * How close in time two failures must begin to count as one failure of the workload,
 * once that failure was judged systemic. A dependency going away fails its clients'
 * readiness probes within failureThreshold x periodSeconds of each other (30 s with the
 * defaults); a minute covers that with room for the watch.
 */
export const TOGETHER_WINDOW_MS = 60_000;

/** A quarantine or eviction sickbay made in this workload within the back-off window. */
export interface EarlierAction {
  /** When sickbay acted (its own clock). */
  at: number;
  /** When that pod's failure began, on sickbay's clock. */
  failedAt: number;
  /** The decision found the workload failing together (over the systemic ratio). */
  systemic: boolean;
  /** A pod of the workload created after the action has been Ready since: its replacement works. */
  replaced: boolean;
}

/**
 * Whether an earlier action still speaks of a failure shared with a pod that began
 * failing at `failedAt`. Its replacement becoming Ready shows the workload can run
 * healthy pods: that is evidence against a shared cause, so it stops counting. Unless
 * that earlier failure was already judged systemic and this one began with it: the
 * pods that failed in one moment are one failure, however their replacements fare.
 */
export function failedTogether(e: EarlierAction, failedAt: number): boolean {
  if (!e.replaced) return true;
  return e.systemic && Math.abs(failedAt - e.failedAt) <= TOGETHER_WINDOW_MS;
}

export interface DecisionInput {
  owner: OwnerInfo;
  /** Pods of the owner still in service (not quarantined), this one included. */
  ownerPods: number;
  /** Of those, how many are failing now (NotReady after having been Ready, or named by a request), this one included. */
  ownerFailing: number;
  /** When this pod began failing, on sickbay's clock. */
  failedAt?: number;
  /** sickbay's quarantines and evictions of this workload within the back-off window. */
  earlier?: EarlierAction[];
  quarantinedForOwner: number;
  maxQuarantined: number;
  systemicRatio: number;
  /** After this many actions on one workload within the window, stop acting on it. */
  backoffAfter?: number;
  backoffWindowMs?: number;
}

/**
 * The policy: whether to quarantine, evict or leave a failing pod. It takes no rate
 * token: the caller takes one only for an action it performs (`admit`), so decisions
 * that skip (StatefulSets, systemic failures, back-off) never spend the cluster's budget.
 */
export function decide(i: DecisionInput): Decision {
  if (!REPLACING_OWNERS.has(i.owner.kind)) {
    return { action: 'skip', reason: 'unsupported-owner', message: UNSUPPORTED_OWNER_REASON[i.owner.kind] ?? `sickbay does not quarantine pods owned by a ${i.owner.kind}` };
  }
  const earlier = i.earlier ?? [];
  // Replacements failing the same way, again and again: acting more only churns.
  if (i.backoffAfter !== undefined && earlier.length >= i.backoffAfter) {
    return {
      action: 'skip',
      reason: 'backoff',
      message: `sickbay quarantined or deleted ${earlier.length} pods of ${i.owner.kind}/${i.owner.name} within ${Math.round((i.backoffWindowMs ?? 0) / 60_000)} min and its replacements fail too: it stops acting on this workload until the window has passed`,
    };
  }
  // Many failing together is not a broken pod but a broken dependency or rollout: taking
  // them all out would turn a degradation into an outage. Keep the scene all the same:
  // quarantine up to the workload's quota (one by default) for diagnosis, delete nothing.
  // The pods sickbay already took out count when they failed together with this one, so
  // a replacement cannot dilute a systemic failure into a "half" that lets the rest go.
  const together = earlier.filter((e) => failedTogether(e, i.failedAt ?? e.failedAt)).length;
  const pods = i.ownerPods + together;
  const failing = i.ownerFailing + together;
  if (pods > 1 && failing / pods > i.systemicRatio) {
    const what = `${failing} of ${pods} pods of ${i.owner.kind}/${i.owner.name} are failing together (over ${Math.round(i.systemicRatio * 100)}%): a systemic failure`;
    if (i.quarantinedForOwner < i.maxQuarantined) {
      return { action: 'quarantine', systemic: `${what}; sickbay keeps one failing pod quarantined for diagnosis and deletes nothing` };
    }
    return { action: 'skip', reason: 'systemic', message: `${what}; sickbay keeps ${i.quarantinedForOwner} quarantined pod(s) for diagnosis and deletes nothing` };
  }
  if (i.quarantinedForOwner >= i.maxQuarantined) {
    return { action: 'delete', reason: `${i.owner.kind}/${i.owner.name} already keeps ${i.quarantinedForOwner} quarantined pod(s) (max ${i.maxQuarantined})` };
  }
  return { action: 'quarantine' };
}

/** An action goes ahead only with a token of the cluster-wide rate; a skip takes none. */
export function admit(decision: Decision, takeToken: () => boolean): Decision {
  if (decision.action === 'skip' || takeToken()) return decision;
  return { action: 'skip', reason: 'rate-limited', message: 'the cluster-wide quarantine rate limit is reached; retrying later' };
}

export function parseMaxQuarantined(raw: string | undefined, fallback: number): { value: number; error?: string } {
  if (raw === undefined) return { value: fallback };
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < 0 || n > 1000) return { value: fallback, error: `must be an integer from 0 to 1000, got ${JSON.stringify(raw)}` };
  return { value: n };
}
