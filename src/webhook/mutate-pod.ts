// Injection policy: a pure function from a pod to the pod sickbay wants. The admission
// handler diffs the two once to get the JSON Patch. The new pod is built copy-on-write:
// every object on a changed path is a fresh copy, every untouched subtree (env lists,
// volumes' contents) is the original's own object, so the diff can skip it by identity
// (structuredClone made the diff of an 8 KB pod cost ~0.8 ms; see bench/README.md).
import type { V1Container, V1Pod, V1Probe } from '@kubernetes/client-node';
import { ANN_INJECTED, ANN_PROBE_HTTP, annEntrypoint, LABEL_INJECT, SHIM_INIT_CONTAINER, SHIM_MOUNT, SHIM_VOLUME } from '../names.js';

export interface InjectionSettings {
  /** Image of the init container; it carries the shim at `shimSource`. */
  shimImage: string;
  shimSource: string;
}

export interface InjectionResult {
  pod: V1Pod;
  warnings: string[];
  /** Why nothing was injected, when nothing was. */
  skipped?: 'opted-out' | 'already-injected';
}

const SUPERVISOR = `${SHIM_MOUNT}/bin/supervise`;
const PROBE = `${SHIM_MOUNT}/bin/probe`;

export function injectPod(original: V1Pod, settings: InjectionSettings): InjectionResult {
  const labels = original.metadata?.labels ?? {};
  const annotations = original.metadata?.annotations ?? {};
  if (labels[LABEL_INJECT] === 'false') return { pod: original, warnings: [], skipped: 'opted-out' };
  if (annotations[ANN_INJECTED] !== undefined) return { pod: original, warnings: [], skipped: 'already-injected' };

  const warnings: string[] = [];
  const spec = { ...(original.spec ?? { containers: [] }) };
  const pod: V1Pod = { ...original, spec };
  spec.containers = (spec.containers ?? []).map((c) => ({ ...c, volumeMounts: [...(c.volumeMounts ?? [])] }));
  spec.initContainers = [...(spec.initContainers ?? [])];
  spec.volumes = [...(spec.volumes ?? [])];
  if (!spec.volumes.some((v) => v.name === SHIM_VOLUME)) spec.volumes.push({ name: SHIM_VOLUME, emptyDir: { sizeLimit: '256Mi' } });

  if (!spec.initContainers.some((c) => c.name === SHIM_INIT_CONTAINER)) spec.initContainers.unshift(shimInstaller(settings));

  const httpProbe = parseProbeAnnotation(annotations[ANN_PROBE_HTTP], warnings);
  for (const container of spec.containers) {
    if (!container.volumeMounts!.some((m) => m.mountPath === SHIM_MOUNT)) container.volumeMounts!.push({ name: SHIM_VOLUME, mountPath: SHIM_MOUNT });
    const wrapped = wrapCommand(container, annotations, warnings);
    if (!container.readinessProbe) {
      if (httpProbe) container.readinessProbe = httpReadiness(httpProbe);
      else if (wrapped) container.readinessProbe = supervisorReadiness(container.name);
    }
  }

  pod.metadata = { ...pod.metadata, annotations: { ...annotations, [ANN_INJECTED]: 'true' } };
  return { pod, warnings };
}

function shimInstaller(s: InjectionSettings): V1Container {
  return {
    name: SHIM_INIT_CONTAINER,
    image: s.shimImage,
    imagePullPolicy: 'IfNotPresent',
    command: ['/bin/sh', `${s.shimSource}/install`, SHIM_MOUNT],
    volumeMounts: [{ name: SHIM_VOLUME, mountPath: SHIM_MOUNT }],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '32Mi' } },
    // Pod Security "restricted".
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

/** Rewrites the command to run under the supervisor; args stay as they are (the kubelet appends them). */
function wrapCommand(c: V1Container, annotations: Record<string, string>, warnings: string[]): boolean {
  if (c.command?.[0] === SUPERVISOR) return true;
  let command = c.command;
  if (!command?.length) {
    const key = annEntrypoint(c.name);
    const raw = annotations[key];
    if (raw !== undefined) {
      command = parseEntrypoint(raw);
      if (!command) warnings.push(`sickbay: annotation ${key} must be a JSON array of strings; container "${c.name}" is not supervised`);
    }
  }
  if (!command?.length) {
    if (annotations[annEntrypoint(c.name)] === undefined) {
      warnings.push(
        `sickbay: container "${c.name}" has no command, so its image entrypoint is unknown and it is not supervised; ` +
          `set its command, or the annotation ${annEntrypoint(c.name)} to the entrypoint as a JSON array`,
      );
    }
    return false;
  }
  c.command = [SUPERVISOR, '--name', c.name, '--', ...command];
  return true;
}

function parseEntrypoint(raw: string): string[] | undefined {
  try {
    const v: unknown = JSON.parse(raw);
    if (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string')) return v;
  } catch {
    // reported by the caller
  }
  return undefined;
}

function parseProbeAnnotation(raw: string | undefined, warnings: string[]): { port: number; path: string } | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d{1,5})(\/.*)?$/.exec(raw.trim());
  const port = m ? Number(m[1]) : 0;
  if (!m || port < 1 || port > 65535) {
    warnings.push(`sickbay: annotation ${ANN_PROBE_HTTP} must be "<port>" or "<port>/<path>", got ${JSON.stringify(raw)}; using the supervisor's probe`);
    return undefined;
  }
  return { port, path: m[2] ?? '/' };
}

function supervisorReadiness(name: string): V1Probe {
  return { exec: { command: [PROBE, name] }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 1, successThreshold: 1 };
}

function httpReadiness(p: { port: number; path: string }): V1Probe {
  return { httpGet: { port: p.port, path: p.path }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 1 };
}
