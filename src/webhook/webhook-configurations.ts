// The two webhook configurations, from one function: the committed webhook-config/
// manifests, `sickbay certs`, the Helm chart's expectations, the tests and the
// playground all come from here.
import type { V1MutatingWebhookConfiguration, V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { CONTROLLER_ANNOTATIONS, LABEL_INJECT, LABEL_INJECTION, LABEL_STATUS, STATUS_QUARANTINED, SYSTEM_NAMESPACES } from '../core/names.js';

export type WebhookTarget =
  | { service: { name: string; namespace: string; port?: number } }
  /** For a sickbay running outside the cluster (local control plane, development). */
  | { url: string };

export interface WebhookConfigOptions {
  target: WebhookTarget;
  /** Base64 PEM of the CA that signed the serving certificate; omit with certManager. */
  caBundle?: string;
  /** `<namespace>/<certificate>`: let cert-manager's cainjector fill the CA bundle. */
  certManagerCertificate?: string;
  /** sickbay's own namespace: never matched, so sickbay can always start. */
  ownNamespace: string;
  name?: string;
  timeoutSeconds?: number;
}


/**
 * CEL, true when a CREATE or UPDATE sets, changes or removes one of sickbay's marks (label
 * sickbay.io/status, the controller's annotations): the API server calls the marks guard
 * for those writes only, so the kubelet's status updates and every other pod write cost
 * nothing. The chart's template carries the same string (its test compares them).
 */
export const MARKS_CHANGED_CEL =
  `object.metadata.?labels[?'${LABEL_STATUS}'] != (request.operation == 'UPDATE' ? oldObject.metadata.?labels[?'${LABEL_STATUS}'] : optional.none()) || ` +
  `[${CONTROLLER_ANNOTATIONS.map((k) => `'${k}'`).join(', ')}].exists(k, object.metadata.?annotations[?k] != (request.operation == 'UPDATE' ? oldObject.metadata.?annotations[?k] : optional.none()))`;

/** What every sickbay webhook shares: the review version, no side effects, its timeout, where it is called, and the namespaces it serves. */
function common(o: WebhookConfigOptions, path: string) {
  return {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    timeoutSeconds: o.timeoutSeconds ?? 5,
    matchPolicy: 'Equivalent',
    clientConfig: clientConfig(o, path),
    namespaceSelector: namespaceSelector(o),
  };
}

const notSickbay = (o: WebhookConfigOptions) => ({ name: 'not-sickbay-itself', expression: `request.userInfo.username != 'system:serviceaccount:${o.ownNamespace}:sickbay'` });

function clientConfig(o: WebhookConfigOptions, path: string) {
  const base = 'url' in o.target ? { url: `${o.target.url.replace(/\/$/, '')}${path}` } : { service: { ...o.target.service, port: o.target.service.port ?? 443, path } };
  return o.caBundle ? { ...base, caBundle: o.caBundle } : base;
}

function metadata(o: WebhookConfigOptions) {
  const annotations = o.certManagerCertificate ? { 'cert-manager.io/inject-ca-from': o.certManagerCertificate } : undefined;
  return { name: o.name ?? 'sickbay', labels: { 'app.kubernetes.io/name': 'sickbay' }, ...(annotations ? { annotations } : {}) };
}

function namespaceSelector(o: WebhookConfigOptions) {
  return {
    matchExpressions: [
      { key: LABEL_INJECTION, operator: 'In', values: ['enabled'] },
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...new Set([...SYSTEM_NAMESPACES, o.ownNamespace])] },
    ],
  };
}

export function mutatingWebhookConfiguration(o: WebhookConfigOptions): V1MutatingWebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: metadata(o),
    webhooks: [
      {
        name: 'pods.mutate.sickbay.io',
        ...common(o, '/mutate'),
        // An outage of sickbay must never block pod creation.
        failurePolicy: 'Ignore',
        reinvocationPolicy: 'Never',
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
        objectSelector: { matchExpressions: [{ key: LABEL_INJECT, operator: 'NotIn', values: ['false'] }] },
      },
    ],
  };
}

export function validatingWebhookConfiguration(o: WebhookConfigOptions): V1ValidatingWebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: metadata(o),
    webhooks: [
      {
        name: 'pods.validate.sickbay.io',
        ...common(o, '/validate'),
        // Fail closed, but only for UPDATEs of quarantined pods (the object selector
        // matches when either the old or the new pod carries the label).
        failurePolicy: 'Fail',
        // The status subresource too: a pods/status update can carry labels (issue 31).
        rules: [{ operations: ['UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods', 'pods/status'], scope: 'Namespaced' }],
        objectSelector: { matchLabels: { [LABEL_STATUS]: STATUS_QUARANTINED } },
        // The handler allows sickbay's own writes (the quarantine patch is an UPDATE of a
        // pod that is quarantined afterwards, so it matches); saying so here spares the
        // API server the call, a round trip in every quarantine. The ServiceAccount is
        // `sickbay`, as every caller of this function names it (the chart has its own
        // template); under another SICKBAY_SERVICE_ACCOUNT the call is made and allowed.
        matchConditions: [notSickbay(o)],
      },
      {
        // Only sickbay may set its marks, on any pod: a forged sickbay.io/status=quarantined
        // would have it deregister a healthy pod and run diagnostics in it.
        name: 'marks.validate.sickbay.io',
        ...common(o, '/validate'),
        failurePolicy: 'Fail',
        rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods', 'pods/status'], scope: 'Namespaced' }],
        matchConditions: [notSickbay(o), { name: 'touches-sickbay-marks', expression: MARKS_CHANGED_CEL }],
      },
    ],
  };
}
