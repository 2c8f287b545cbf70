// `sickbay inject -f <manifest>`: the manifest as the mutating webhook would change it,
// as `istioctl kube-inject` shows Istio's. Pods and the pod templates of workloads
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, and List items) go
// through the webhook's own injection; everything else is printed as it came. What the
// webhook adds from the cluster's state (nodes a Deployment avoids) is not shown; its
// namespace's annotations count when the CLI was given a cluster to read them from.
import type { V1ObjectMeta, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { injectPod, type InjectionSettings } from '../webhook/mutate-pod.js';
import { SHIM_SUPERVISOR } from '../core/names.js';
import { podShapeProblem } from '../webhook/pod-shape.js';

export interface InjectedManifest {
  /** The documents, mutated where the webhook would mutate them. */
  documents: object[];
  /** Per object: what was injected, and why a container or a pod is left alone. */
  notes: string[];
}

interface Template {
  metadata?: V1ObjectMeta;
  spec?: V1PodSpec;
}

type Doc = { apiVersion?: string; kind?: string; metadata?: V1ObjectMeta; spec?: Record<string, unknown>; items?: Doc[] };

/** Where a kind keeps its pod template. */
function templateOf(doc: Doc): { get: () => Template | undefined; set: (t: Template) => void } | undefined {
  const spec = doc.spec as Record<string, any> | undefined;
  switch (doc.kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'ReplicationController':
    case 'Job':
      return { get: () => spec?.template, set: (t) => void (spec!.template = t) };
    case 'CronJob':
      return { get: () => spec?.jobTemplate?.spec?.template, set: (t) => void (spec!.jobTemplate.spec.template = t) };
    default:
      return undefined;
  }
}

/** The cluster's view of namespaces (`inject --kubeconfig`): their annotations, as the webhook reads them at admission. */
export interface NamespaceContext {
  /** The namespace of objects that name none. */
  default: string;
  annotations: (namespace: string) => Record<string, string> | undefined;
}

/** The namespaces the manifest's objects name (for reading them from the cluster first). */
export function namespacesIn(text: string): string[] {
  try {
    const docs = yaml.loadAll(text, undefined, { schema: yaml.CORE_SCHEMA }) as Doc[];
    const all = docs.flatMap((d) => (d?.kind === 'List' && Array.isArray(d.items) ? d.items : [d]));
    return [...new Set(all.map((d) => d?.metadata?.namespace).filter((n): n is string => typeof n === 'string'))];
  } catch {
    return []; // injectManifest names the problem
  }
}

export function injectManifest(text: string, settings: InjectionSettings, namespaces?: NamespaceContext): InjectedManifest {
  const notes: string[] = [];
  const out: object[] = [];
  // Plain objects (client-node's loadAllYaml would deserialize into its typed models,
  // and throw on a malformed pod before it could be named); the core schema, so the
  // strings of a manifest stay strings, and empty documents (a trailing `---`) dropped.
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text, undefined, { schema: yaml.CORE_SCHEMA }).filter((d) => d !== null && d !== undefined);
  } catch (err) {
    const mark = (err as { mark?: { line: number } }).mark;
    throw new Error(`not YAML or JSON${mark ? ` (line ${mark.line + 1})` : ''}: ${(err as { reason?: string }).reason ?? (err as Error).message.split('\n')[0]}`, { cause: err });
  }
  docs.forEach((doc, i) => {
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`document ${i + 1}: not a Kubernetes object`);
    out.push(injectDoc(doc as Doc, settings, notes, `document ${i + 1}`, namespaces));
  });
  return { documents: out, notes };
}

function injectDoc(doc: Doc, settings: InjectionSettings, notes: string[], where: string, namespaces?: NamespaceContext): Doc {
  const name = `${doc.kind ?? '?'}/${doc.metadata?.name ?? doc.metadata?.generateName ?? '?'}`;
  if (doc.kind === 'List' && Array.isArray(doc.items)) {
    doc.items = doc.items.map((item, j) => injectDoc(item, settings, notes, `${where}, item ${j + 1}`, namespaces));
    return doc;
  }
  let pod: V1Pod;
  let put: (p: V1Pod) => void;
  if (doc.kind === 'Pod') {
    pod = doc as V1Pod;
    put = (p) => Object.assign(doc, p);
  } else {
    const at = templateOf(doc);
    const template = at?.get();
    if (!at || !template) return doc;
    pod = { metadata: template.metadata, spec: template.spec };
    put = (p) => at.set({ metadata: p.metadata, spec: p.spec });
  }
  const problem = podShapeProblem(pod as Record<string, unknown>);
  if (problem) throw new Error(`${where} (${name}): not a valid pod: ${problem}`);
  const ns = namespaces && (doc.metadata?.namespace ?? namespaces.default);
  const res = injectPod(pod, settings, ns ? { annotations: namespaces!.annotations(ns) ?? {} } : {});
  if (res.skipped === 'opted-out') notes.push(`${name}: left alone: labelled sickbay.io/inject=false`);
  else if (res.skipped === 'already-injected') notes.push(`${name}: already injected (annotation sickbay.io/injected)`);
  else {
    const wrapped = res.pod.spec!.containers.filter((c) => c.command?.[0] === SHIM_SUPERVISOR).map((c) => c.name);
    notes.push(`${name}: injected; supervised: ${wrapped.length ? wrapped.join(', ') : 'none'}`);
  }
  for (const w of res.warnings) notes.push(`${name}: ${w.replace(/^sickbay: /, '')}`);
  put(res.pod);
  return doc;
}

/** The documents as YAML (`---` between them) or as JSON (one object, or a List of them). */
export function renderManifest(docs: object[], output: 'yaml' | 'json'): string {
  if (output === 'json') {
    const body = docs.length === 1 ? docs[0] : { apiVersion: 'v1', kind: 'List', items: docs };
    return `${JSON.stringify(body, null, 2)}\n`;
  }
  return docs.map((d) => yaml.dump(d, { noRefs: true, lineWidth: -1 })).join('---\n');
}
