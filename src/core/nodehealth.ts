// The NodeHealth resource (sickbay.io/v1alpha1, cluster-scoped, named after its node):
// the node agent writes it, the node controller reads it, `kubectl get nodehealths`
// shows it. The CRD is defined here once; the playground, the tests and the Helm chart
// (crds/, generated from this) install the same object.
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';

export const NODEHEALTH_GROUP = 'sickbay.io';
export const NODEHEALTH_VERSION = 'v1alpha1';
export const NODEHEALTH_PLURAL = 'nodehealths';
export const NODEHEALTH_KIND = 'NodeHealth';
export const NODEHEALTH_PATH = `/apis/${NODEHEALTH_GROUP}/${NODEHEALTH_VERSION}/${NODEHEALTH_PLURAL}`;

export interface CheckStatus {
  /** kubelet, conditions, network, processes */
  name: string;
  ok: boolean;
  message: string;
  /** Failures in a row; the check fails at the agent's threshold (3 by default). */
  consecutiveFailures: number;
  lastTransitionTime: string;
}

export interface NodeHealthStatus {
  healthy: boolean;
  /** Failing checks, comma-separated ("" when healthy): one printer column. */
  failing: string;
  heartbeatTime: string;
  heartbeatIntervalSeconds: number;
  /** When `healthy` last changed. */
  since: string;
  checks: CheckStatus[];
  /**
   * The verdict as a standard condition (`Healthy`), for what reads conditions:
   * `kubectl wait --for=condition=Healthy nodehealth/<node>`, Argo CD's health checks.
   */
  conditions: NodeHealthCondition[];
  agentVersion?: string;
  /** The checkpoints the agent took or failed to take, one per request in spec. */
  checkpoints?: CheckpointRecord[];
}

/** Requests (and records) a node holds at most: a bound on the object's size. */
export const MAX_CHECKPOINTS = 64;

export interface NodeHealthCondition {
  type: 'Healthy';
  status: 'True' | 'False';
  reason: 'ChecksPassing' | 'ChecksFailing';
  message: string;
  lastTransitionTime: string;
}

/**
 * The agent's own Node condition, as Node Problem Detector writes its conditions: `True`
 * while the node has a problem (a check failing), `False` while it has none. Node
 * Healthcheck's `unhealthyConditions` and dashboards read Nodes, not NodeHealths.
 */
export function nodeProblemCondition(type: string, healthy: boolean, since: Date, checks: Pick<CheckStatus, 'name' | 'ok' | 'message'>[], now: Date) {
  const verdict = healthCondition(healthy, since, checks);
  return { type, status: healthy ? 'False' : 'True', reason: verdict.reason, message: `sickbay agent: ${verdict.message}`, lastHeartbeatTime: now.toISOString(), lastTransitionTime: verdict.lastTransitionTime };
}

/** The `Healthy` condition of an agent's verdict: its time is when the verdict last changed. */
export function healthCondition(healthy: boolean, since: Date, checks: Pick<CheckStatus, 'name' | 'ok' | 'message'>[]): NodeHealthCondition {
  const failing = checks.filter((c) => !c.ok);
  return {
    type: 'Healthy',
    status: healthy ? 'True' : 'False',
    reason: healthy ? 'ChecksPassing' : 'ChecksFailing',
    message: healthy ? `passing: ${checks.map((c) => c.name).join(', ') || 'no checks'}` : failing.map((c) => `${c.name}: ${c.message}`).join('; '),
    lastTransitionTime: since.toISOString(),
  };
}

/**
 * A checkpoint sickbay wants kept on this node (spec, written by `sickbay serve` at a
 * quarantine): while the entry is there the agent takes the checkpoint once and keeps
 * its archive; when it goes (the scene released, expired or deleted), the agent removes
 * the archive.
 */
export interface CheckpointRequest {
  namespace: string;
  pod: string;
  /** The pod's uid: a new pod of the same name is another scene. */
  uid: string;
  container: string;
  requestedAt: string;
}

/** What the agent did with a request (status). */
export interface CheckpointRecord {
  uid: string;
  container: string;
  status: 'ok' | 'failed';
  /** The archive's path on the node (the kubelet's checkpoints folder). */
  archive?: string;
  bytes?: number;
  durationMs?: number;
  message?: string;
  at: string;
}

/**
 * The pod's `sickbay.io/checkpoint-result`, as the checkpoint step writes it and `sickbay
 * collect` (and the scene archive) read it: the outcome, and each supervised container's.
 */
export interface CheckpointResult {
  status: 'ok' | 'failed' | 'timeout' | 'no-agent';
  node: string;
  containers: Array<{ name: string; status: CheckpointRecord['status'] | 'missing'; archive?: string; bytes?: number; durationMs?: number; message?: string }>;
  message?: string;
  waitedMs: number;
  at: string;
}

export const checkpointKey = (c: { uid: string; container: string }) => `${c.uid}/${c.container}`;

export interface NodeHealth {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; resourceVersion?: string; uid?: string; creationTimestamp?: Date | string; ownerReferences?: unknown[] };
  spec?: { nodeName?: string; checkpoints?: CheckpointRequest[] };
  status?: Partial<NodeHealthStatus>;
}

export function nodeHealthCrd(): V1CustomResourceDefinition {
  const check = {
    type: 'object',
    required: ['name', 'ok'],
    properties: {
      name: { type: 'string' },
      ok: { type: 'boolean' },
      message: { type: 'string' },
      consecutiveFailures: { type: 'integer', minimum: 0 },
      lastTransitionTime: { type: 'string', format: 'date-time' },
    },
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${NODEHEALTH_PLURAL}.${NODEHEALTH_GROUP}` },
    spec: {
      group: NODEHEALTH_GROUP,
      scope: 'Cluster',
      names: { plural: NODEHEALTH_PLURAL, singular: 'nodehealth', kind: NODEHEALTH_KIND, listKind: `${NODEHEALTH_KIND}List`, shortNames: ['nh'], categories: ['sickbay'] },
      versions: [
        {
          name: NODEHEALTH_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Node', type: 'string', jsonPath: '.spec.nodeName' },
            { name: 'Healthy', type: 'boolean', jsonPath: '.status.healthy' },
            { name: 'Failing', type: 'string', jsonPath: '.status.failing' },
            { name: 'Last Heartbeat', type: 'date', jsonPath: '.status.heartbeatTime' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: "A node agent's heartbeat and check results. Named after the node.",
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: {
                  type: 'object',
                  properties: {
                    nodeName: { type: 'string' },
                    checkpoints: {
                      type: 'array',
                      maxItems: MAX_CHECKPOINTS,
                      description: 'Checkpoints sickbay wants taken and kept on this node (one per quarantined container); the agent removes the archive of an entry that goes.',
                      items: {
                        type: 'object',
                        required: ['namespace', 'pod', 'uid', 'container'],
                        properties: {
                          namespace: { type: 'string', maxLength: 63 },
                          pod: { type: 'string', maxLength: 253 },
                          uid: { type: 'string', maxLength: 64 },
                          container: { type: 'string', maxLength: 63 },
                          requestedAt: { type: 'string', format: 'date-time' },
                        },
                      },
                    },
                  },
                },
                status: {
                  type: 'object',
                  properties: {
                    healthy: { type: 'boolean' },
                    failing: { type: 'string' },
                    heartbeatTime: { type: 'string', format: 'date-time' },
                    heartbeatIntervalSeconds: { type: 'number', minimum: 0 },
                    since: { type: 'string', format: 'date-time' },
                    agentVersion: { type: 'string' },
                    checks: { type: 'array', maxItems: 32, items: check },
                    checkpoints: {
                      type: 'array',
                      maxItems: MAX_CHECKPOINTS,
                      items: {
                        type: 'object',
                        required: ['uid', 'container', 'status'],
                        properties: {
                          uid: { type: 'string', maxLength: 64 },
                          container: { type: 'string', maxLength: 63 },
                          status: { type: 'string', enum: ['ok', 'failed'] },
                          archive: { type: 'string', maxLength: 1024 },
                          bytes: { type: 'integer', minimum: 0 },
                          durationMs: { type: 'integer', minimum: 0 },
                          message: { type: 'string', maxLength: 1024 },
                          at: { type: 'string', format: 'date-time' },
                        },
                      },
                    },
                    conditions: {
                      type: 'array',
                      maxItems: 8,
                      items: {
                        type: 'object',
                        required: ['type', 'status', 'lastTransitionTime'],
                        properties: {
                          type: { type: 'string' },
                          status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
                          reason: { type: 'string' },
                          message: { type: 'string' },
                          lastTransitionTime: { type: 'string', format: 'date-time' },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
}
