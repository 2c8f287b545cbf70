// Generated AdmissionReviews for the fault suite (fast-check): pods of random shapes and
// sizes, any unicode, fields of the wrong type, and bodies that are not reviews at all.
import fc from 'fast-check';

export interface GeneratedReview {
  body: string;
  /** The review's request, when the body is one. */
  request?: { uid?: unknown; object?: unknown; operation?: unknown };
  /**
   * A review the API server could send: a Pod of the types its schema has (any values,
   * any unicode, sizes under the body limit), CREATE or UPDATE. It must be answered 200,
   * /mutate with allowed and a patch that applies; a 4xx for it is a failure.
   */
  valid?: boolean;
}

// Strings a pod may carry: ASCII, any unicode (astral planes, combining marks), empty.
const text = fc.oneof({ arbitrary: fc.string({ maxLength: 20 }), weight: 3 }, { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }), weight: 2 }, { arbitrary: fc.string({ unit: 'binary', maxLength: 20 }), weight: 1 }, fc.constant(''));
const probe = fc.record(
  { exec: fc.record({ command: fc.array(text, { maxLength: 4 }) }), httpGet: fc.record({ path: text, port: fc.oneof(fc.integer({ min: -5, max: 70000 }), text) }), periodSeconds: fc.integer({ min: -1, max: 100 }), failureThreshold: fc.integer({ min: -1, max: 10 }) },
  { requiredKeys: [] },
);
const container = fc.record(
  {
    name: text,
    image: text,
    command: fc.oneof(fc.array(text, { maxLength: 5 }), fc.constant(null), fc.anything({ maxDepth: 1 })),
    args: fc.array(text, { maxLength: 5 }),
    env: fc.array(fc.record({ name: text, value: text }), { maxLength: 5 }),
    livenessProbe: probe,
    readinessProbe: probe,
    startupProbe: probe,
    securityContext: fc.record({ runAsUser: fc.integer({ min: -1, max: 70000 }), readOnlyRootFilesystem: fc.boolean() }, { requiredKeys: [] }),
    volumeMounts: fc.array(fc.record({ name: text, mountPath: text }), { maxLength: 3 }),
  },
  { requiredKeys: ['name'] },
);
const dict = fc.dictionary(text, text, { maxKeys: 6 });
// Most pods are small; a few are wide (to 120 containers) or carry a large annotation.
const containers = fc.oneof({ arbitrary: fc.array(container, { maxLength: 4 }), weight: 20 }, { arbitrary: fc.array(container, { minLength: 60, maxLength: 120 }), weight: 1 }, { arbitrary: fc.anything({ maxDepth: 2 }), weight: 1 });
// A large value is a placeholder until the request is sent (10,000 of them held at once
// would take gigabytes): see expand().
const big = fc.oneof({ arbitrary: fc.constant(undefined), weight: 40 }, { arbitrary: fc.integer({ min: 1, max: 3_000_000 }).map((n) => `@@BIG:${n}@@`), weight: 1 });
/** The body as sent: a placeholder becomes that many bytes of two-byte characters. */
export const expand = (body: string) => body.replace(/@@BIG:(\d+)@@/g, (_, n: string) => 'é'.repeat(Math.floor(Number(n) / 2)));
const pod = fc.record(
  {
    apiVersion: fc.constant('v1'),
    kind: fc.constant('Pod'),
    metadata: fc.record({ name: text, namespace: text, labels: dict, annotations: fc.tuple(dict, big).map(([d, b]) => (b === undefined ? d : { ...d, big: b })) }, { requiredKeys: [] }),
    spec: fc.record({ containers, initContainers: fc.array(container, { maxLength: 2 }), volumes: fc.array(fc.record({ name: text, emptyDir: fc.constant({}) }), { maxLength: 3 }), nodeName: text }, { requiredKeys: [] }),
  },
  { requiredKeys: ['metadata'] },
);
// The same pod, with every field of the type the API server's schema gives it: what a
// real API server sends a webhook (its values are not validated before mutating admission).
const word = fc.oneof({ arbitrary: fc.string({ maxLength: 20 }), weight: 3 }, { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }), weight: 2 }, fc.constant(''));
const wellTypedProbe = fc.oneof(
  fc.record({ exec: fc.record({ command: fc.array(word, { minLength: 1, maxLength: 4 }) }), periodSeconds: fc.integer({ min: 1, max: 100 }), failureThreshold: fc.integer({ min: 1, max: 10 }) }, { requiredKeys: ['exec'] }),
  fc.record({ httpGet: fc.record({ path: fc.constant('/healthz'), port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom('http', 'web')) }), periodSeconds: fc.integer({ min: 1, max: 100 }) }, { requiredKeys: ['httpGet'] }),
);
const wellTypedContainer = fc.record(
  {
    name: word,
    image: word,
    command: fc.array(word, { minLength: 1, maxLength: 5 }),
    args: fc.array(word, { maxLength: 5 }),
    env: fc.array(fc.record({ name: word, value: word }), { maxLength: 5 }),
    ports: fc.array(fc.record({ name: fc.constantFrom('http', 'web'), containerPort: fc.integer({ min: 1, max: 65535 }) }), { maxLength: 2 }),
    livenessProbe: wellTypedProbe,
    readinessProbe: wellTypedProbe,
    securityContext: fc.record({ runAsUser: fc.integer({ min: 0, max: 70000 }), readOnlyRootFilesystem: fc.boolean() }, { requiredKeys: [] }),
    volumeMounts: fc.array(fc.record({ name: word, mountPath: word }), { maxLength: 3 }),
  },
  { requiredKeys: ['name', 'image'] },
);
const wellTypedDict = fc.dictionary(word, word, { maxKeys: 6 });
const bigUnderLimit = fc.oneof({ arbitrary: fc.constant(undefined), weight: 40 }, { arbitrary: fc.integer({ min: 1, max: 1_000_000 }).map((n) => `@@BIG:${n}@@`), weight: 1 });
const wellTypedPod = fc.record({
  apiVersion: fc.constant('v1'),
  kind: fc.constant('Pod'),
  metadata: fc.record({ name: word, namespace: word, labels: wellTypedDict, annotations: fc.tuple(wellTypedDict, bigUnderLimit).map(([d, b]) => (b === undefined ? d : { ...d, big: b })) }, { requiredKeys: ['name'] }),
  spec: fc.record({ containers: fc.oneof({ arbitrary: fc.array(wellTypedContainer, { minLength: 1, maxLength: 4 }), weight: 20 }, { arbitrary: fc.array(wellTypedContainer, { minLength: 60, maxLength: 100 }), weight: 1 }), initContainers: fc.array(wellTypedContainer, { maxLength: 2 }), volumes: fc.array(fc.record({ name: word, emptyDir: fc.constant({}) }), { maxLength: 3 }) }, { requiredKeys: ['containers'] }),
});
const validReview = fc
  .record({
    uid: fc.uuid(),
    operation: fc.constantFrom('CREATE', 'UPDATE'),
    object: wellTypedPod,
    namespace: word,
    userInfo: fc.record({ username: word, groups: fc.array(word, { maxLength: 3 }) }),
  })
  .map((req) => {
    const request = { ...req, ...(req.operation === 'UPDATE' ? { oldObject: req.object } : {}), kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' } };
    return { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request }), request, valid: true };
  });

export const reviewArbitrary = (): fc.Arbitrary<GeneratedReview> => {
  const review = fc
    .record({
      uid: fc.oneof({ arbitrary: fc.uuid(), weight: 10 }, { arbitrary: text, weight: 1 }, { arbitrary: fc.anything({ maxDepth: 0 }), weight: 1 }),
      operation: fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT', 'BOGUS'),
      object: fc.oneof({ arbitrary: pod, weight: 12 }, { arbitrary: fc.anything({ maxDepth: 3 }), weight: 1 }),
      oldObject: fc.option(pod, { freq: 3 }),
      namespace: text,
      userInfo: fc.record({ username: text, groups: fc.array(text, { maxLength: 3 }) }),
    })
    .map((req) => {
      const request = { ...req, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' } };
      return { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request }), request };
    });
  const junk = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((v) => ({ body: JSON.stringify(v) })),
    fc.tuple(review, fc.nat()).map(([r, n]) => ({ body: r.body.slice(0, n % Math.max(1, r.body.length)) })),
    fc.string({ unit: 'binary', maxLength: 200 }).map((s) => ({ body: s })),
    fc.record({ apiVersion: fc.constant('admission.k8s.io/v1'), kind: fc.constant('AdmissionReview'), request: fc.anything({ maxDepth: 3 }) }).map((v) => ({ body: JSON.stringify(v) })),
  );
  return fc.oneof({ arbitrary: validReview, weight: 5 }, { arbitrary: review, weight: 4 }, { arbitrary: junk, weight: 2 });
};
