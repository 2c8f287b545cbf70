// What the API server guarantees of a pod it sends (it decoded it into a typed Pod) and a
// hand-made AdmissionReview may not: each field sickbay reads has its type. A pod that
// breaks this is a malformed request (HTTP 400 naming the field), never an exception
// inside the injection (HTTP 500). Absent and null optional fields are both accepted.

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const absent = (v: unknown) => v === undefined || v === null;

type Check = (v: unknown) => boolean;
const string: Check = (v) => typeof v === 'string';
const object: Check = isObject;
const intOrString: Check = (v) => typeof v === 'string' || Number.isInteger(v);
const listOf = (each: Check): Check => (v) => Array.isArray(v) && v.every(each);
const mapOfStrings: Check = (v) => isObject(v) && Object.values(v).every(string);

type Fields = readonly (readonly [key: string, check: Check, what: string])[];

/** The first field of `v` (under `at`) whose value fails its check, as "path must be what". */
function firstProblem(v: Record<string, unknown>, at: string, fields: Fields): string | undefined {
  for (const [key, check, what] of fields) {
    const value = v[key];
    if (!absent(value) && !check(value)) return `${at}.${key} must be ${what}`;
  }
  return undefined;
}

const PROBE: Fields = [['exec', object, 'an object'], ['httpGet', object, 'an object'], ['tcpSocket', object, 'an object'], ['grpc', object, 'an object']];
const EXEC: Fields = [['command', listOf(string), 'a list of strings']];
const HTTP_GET: Fields = [['port', intOrString, 'a port number or name'], ['path', string, 'a string'], ['host', string, 'a string'], ['scheme', string, 'a string'], ['httpHeaders', listOf(object), 'a list of objects']];
const TCP_SOCKET: Fields = [['port', intOrString, 'a port number or name']];
const CONTAINER: Fields = [
  ['image', string, 'a string'],
  ['command', listOf(string), 'a list of strings'],
  ['args', listOf(string), 'a list of strings'],
  ['env', listOf(object), 'a list of objects'],
  ['ports', listOf(object), 'a list of objects'],
  ['volumeMounts', listOf(object), 'a list of objects'],
  ['securityContext', object, 'an object'],
  ['livenessProbe', object, 'an object'],
  ['readinessProbe', object, 'an object'],
  ['startupProbe', object, 'an object'],
];
const METADATA: Fields = [['labels', mapOfStrings, 'a map of strings'], ['annotations', mapOfStrings, 'a map of strings'], ['name', string, 'a string']];
const SPEC: Fields = [['volumes', listOf(object), 'a list of objects'], ['imagePullSecrets', listOf(object), 'a list of objects']];

function probeProblem(p: Record<string, unknown>, at: string): string | undefined {
  const top = firstProblem(p, at, PROBE);
  if (top) return top;
  if (isObject(p.exec)) {
    const e = firstProblem(p.exec, `${at}.exec`, EXEC);
    if (e) return e;
  }
  if (isObject(p.httpGet)) {
    const h = firstProblem(p.httpGet, `${at}.httpGet`, HTTP_GET);
    if (h) return h;
  }
  if (isObject(p.tcpSocket)) return firstProblem(p.tcpSocket, `${at}.tcpSocket`, TCP_SOCKET);
  return undefined;
}

function containerProblem(c: Record<string, unknown>, at: string): string | undefined {
  if (!string(c.name)) return `${at}.name must be a string`;
  const fields = firstProblem(c, at, CONTAINER);
  if (fields) return fields;
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
    const p = c[probe];
    if (isObject(p)) {
      const problem = probeProblem(p, `${at}.${probe}`);
      if (problem) return problem;
    }
  }
  return undefined;
}

/** Labels and annotations, the part of a pod both webhooks read. */
export function metadataProblem(pod: Record<string, unknown>): string | undefined {
  if (absent(pod.metadata)) return undefined;
  if (!isObject(pod.metadata)) return 'metadata must be an object';
  return firstProblem(pod.metadata, 'metadata', METADATA);
}

/** Why the pod cannot be a Pod the API server sent, or undefined. */
export function podShapeProblem(pod: Record<string, unknown>): string | undefined {
  const meta = metadataProblem(pod);
  if (meta) return meta;
  if (absent(pod.spec)) return undefined;
  if (!isObject(pod.spec)) return 'spec must be an object';
  const spec = pod.spec;
  for (const list of ['containers', 'initContainers', 'ephemeralContainers'] as const) {
    const v = spec[list];
    if (absent(v)) continue;
    if (!Array.isArray(v)) return `spec.${list} must be a list`;
    for (let i = 0; i < v.length; i++) {
      const c = v[i];
      if (!isObject(c)) return `spec.${list}[${i}] must be an object`;
      const problem = containerProblem(c, `spec.${list}[${i}]`);
      if (problem) return problem;
    }
  }
  return firstProblem(spec, 'spec', SPEC);
}
