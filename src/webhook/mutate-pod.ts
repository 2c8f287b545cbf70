// Injection policy: a pure function from a pod to the pod sickbay wants. The admission
// handler diffs the two once to get the JSON Patch. The new pod is built copy-on-write:
// every object on a changed path is a fresh copy, every untouched subtree (env lists,
// volumes' contents) is the original's own object, so the diff can skip it by identity
// (structuredClone made the diff of an 8 KB pod cost ~0.8 ms; see bench/README.md).
import type { V1Container, V1Pod, V1Probe } from '@kubernetes/client-node';
import type { IntOrString } from '@kubernetes/client-node';
import type { ShimDelivery } from '../core/config.js';
import { ANN_FLIGHT_RECORDER, ANN_INJECTED, ENV_JFR_OPTIONS, JFR_REPOSITORY, ANN_PROBE_HTTP, ANN_SHIM_VOLUME_SIZE, annEntrypoint, LABEL_INJECT, PODINFO_MOUNT, PODINFO_VOLUME, SHIM_BIN_MOUNT, SHIM_IMAGE_VOLUME, SHIM_INIT_CONTAINER, SHIM_MOUNT, SHIM_PROBE, SHIM_SUPERVISOR, SHIM_VOLUME } from '../core/names.js';

export interface InjectionSettings {
  /** The image carrying the shim at `shimSource`. */
  shimImage: string;
  shimSource: string;
  /** How the pod gets it (default the init container, which works on every runtime; see shim-delivery.ts). */
  delivery?: ShimDelivery;
  /** Secrets the kubelet needs to pull `shimImage` (they must exist in the pod's namespace). */
  pullSecrets?: string[];
}

export interface InjectionResult {
  pod: V1Pod;
  warnings: string[];
  /** Why nothing was injected, when nothing was. */
  skipped?: 'opted-out' | 'already-injected';
}

const SUPERVISOR = SHIM_SUPERVISOR;
const PROBE = SHIM_PROBE;

/** What the webhook knows of the pod's namespace (from the informer cache; none before it synced). */
export interface NamespaceView {
  annotations?: Record<string, string>;
}

export function injectPod(original: V1Pod, settings: InjectionSettings, namespace: NamespaceView = {}): InjectionResult {
  const labels = original.metadata?.labels ?? {};
  const annotations = original.metadata?.annotations ?? {};
  if (labels[LABEL_INJECT] === 'false') return { pod: original, warnings: [], skipped: 'opted-out' };
  if (annotations[ANN_INJECTED] !== undefined) return { pod: original, warnings: [], skipped: 'already-injected' };

  const warnings: string[] = [];
  const spec = { ...(original.spec ?? { containers: [] }) };
  const pod: V1Pod = { ...original, spec };
  spec.containers = (spec.containers ?? []).map((c) => ({ ...c, volumeMounts: [...(c.volumeMounts ?? [])] }));
  spec.volumes = [...(spec.volumes ?? [])];
  const volume = volumeSize(annotations[ANN_SHIM_VOLUME_SIZE], warnings);
  if (!spec.volumes.some((v) => v.name === SHIM_VOLUME)) spec.volumes.push({ name: SHIM_VOLUME, emptyDir: { sizeLimit: volume.quantity } });

  // The image volume brings the shim's files read-only to /sickbay/bin; the init
  // container copies them there. Either way /sickbay itself is the pod's emptyDir.
  const fromImage = settings.delivery === 'image-volume';
  if (fromImage) {
    if (!spec.volumes.some((v) => v.name === SHIM_IMAGE_VOLUME)) spec.volumes.push({ name: SHIM_IMAGE_VOLUME, image: { reference: settings.shimImage, pullPolicy: 'IfNotPresent' } });
  } else if (!spec.initContainers?.some((c) => c.name === SHIM_INIT_CONTAINER)) {
    spec.initContainers = [shimInstaller(settings, volume.kib), ...(spec.initContainers ?? [])];
  }
  const binSubPath = settings.shimSource.replace(/^\/+|\/+$/g, '');
  const missingSecrets = (settings.pullSecrets ?? []).filter((name) => !spec.imagePullSecrets?.some((s) => s.name === name));
  if (missingSecrets.length) spec.imagePullSecrets = [...(spec.imagePullSecrets ?? []), ...missingSecrets.map((name) => ({ name }))];

  const httpProbe = parseProbeAnnotation(annotations[ANN_PROBE_HTTP], warnings);
  const recorder = flightRecorderOn(annotations, namespace.annotations ?? {}, warnings);
  const supervised: V1Container[] = [];
  let podInfo = false;
  for (const container of spec.containers) {
    if (!container.volumeMounts!.some((m) => m.mountPath === SHIM_MOUNT)) container.volumeMounts!.push({ name: SHIM_VOLUME, mountPath: SHIM_MOUNT });
    if (fromImage && !container.volumeMounts!.some((m) => m.mountPath === SHIM_BIN_MOUNT)) {
      container.volumeMounts!.push({ name: SHIM_IMAGE_VOLUME, mountPath: SHIM_BIN_MOUNT, readOnly: true, ...(binSubPath ? { subPath: binSubPath } : {}) });
    }
    // Without the installer, the supervisor writes the volume's limit for the dump script.
    const wrapped = wrapCommand(container, annotations, warnings, fromImage ? volume.kib : undefined);
    if (!container.readinessProbe) {
      if (httpProbe) container.readinessProbe = httpReadiness(httpProbe);
      else if (wrapped) container.readinessProbe = supervisorReadiness(container.name);
    }
    if (wrapped && container.livenessProbe && keepSceneLiveness(container, warnings)) podInfo = true;
    if (wrapped) supervised.push(container);
  }
  // The supervisor appends these to JAVA_TOOL_OPTIONS as it starts the app, whatever set
  // that (the pod's env, a ConfigMap, the image): the user's options are kept, and only
  // the app's JVMs record (a `jcmd` run in the container does not). The containers share
  // the recorder's quarter of the volume.
  if (recorder) {
    for (const c of supervised) {
      if (!c.env?.some((e) => e.name === ENV_JFR_OPTIONS)) c.env = [...(c.env ?? []), { name: ENV_JFR_OPTIONS, value: jfrOptions(`${JFR_REPOSITORY}/${c.name}`, jfrMaxSizeMiB(volume.kib / supervised.length)) }];
    }
  }
  // The liveness wrapper reads the pod's labels (quarantined or not) from the downward API.
  if (podInfo) {
    if (!spec.volumes.some((v) => v.name === PODINFO_VOLUME)) {
      spec.volumes.push({ name: PODINFO_VOLUME, downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } });
    }
    for (const c of spec.containers) {
      if (!c.volumeMounts!.some((m) => m.mountPath === PODINFO_MOUNT)) c.volumeMounts!.push({ name: PODINFO_VOLUME, mountPath: PODINFO_MOUNT, readOnly: true });
    }
  }

  pod.metadata = { ...pod.metadata, annotations: { ...annotations, [ANN_INJECTED]: 'true' } };
  return { pod, warnings };
}

/** The pod's annotation, else its namespace's; `true` or `false`, anything else is warned about and off. */
function flightRecorderOn(pod: Record<string, string>, ns: Record<string, string>, warnings: string[]): boolean {
  for (const [where, raw] of [['pod', pod[ANN_FLIGHT_RECORDER]], ['namespace', ns[ANN_FLIGHT_RECORDER]]] as const) {
    if (raw === undefined) continue;
    const v = raw.trim().toLowerCase();
    if (v === 'true' || v === 'false') return v === 'true';
    warnings.push(`sickbay: annotation ${ANN_FLIGHT_RECORDER} on the ${where} must be "true" or "false", got ${JSON.stringify(raw)}; the flight recorder is off`);
    return false;
  }
  return false;
}

/** How far back the flight recorder keeps events: the minutes before a failure. */
export const JFR_MAX_AGE = '10m';
/** A container's recording size bound: a quarter of its share of the /sickbay volume, at most 64 MiB (room stays for the dumps). */
export const jfrMaxSizeMiB = (volumeKiB: number) => Math.max(1, Math.min(64, Math.floor(volumeKiB / 1024 / 4)));

/**
 * JDK Flight Recorder, continuous, on disk in the shim volume (not /tmp, which may be
 * read-only), bounded in age and size; the JDK's default settings (about 1 % overhead).
 */
export function jfrOptions(repository: string, maxSizeMiB: number): string {
  return `-XX:FlightRecorderOptions=repository=${repository} -XX:StartFlightRecording=name=sickbay,disk=true,maxage=${JFR_MAX_AGE},maxsize=${maxSizeMiB}m`;
}

const DEFAULT_VOLUME_SIZE = '256Mi';
const UNITS: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** The /sickbay volume's size limit: the annotation's quantity, or the default; in KiB for the shim. */
function volumeSize(raw: string | undefined, warnings: string[]): { quantity: string; kib: number } {
  const parse = (q: string) => {
    const m = /^(\d{1,15})(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(q);
    return m ? Math.floor((Number(m[1]) * UNITS[m[2] ?? '']!) / 1024) : undefined;
  };
  if (raw !== undefined) {
    const kib = parse(raw.trim());
    if (kib !== undefined && kib >= 1024) return { quantity: raw.trim(), kib };
    warnings.push(`sickbay: annotation ${ANN_SHIM_VOLUME_SIZE} must be a quantity of at least 1Mi such as "1Gi", got ${JSON.stringify(raw)}; using ${DEFAULT_VOLUME_SIZE}`);
  }
  return { quantity: DEFAULT_VOLUME_SIZE, kib: parse(DEFAULT_VOLUME_SIZE)! };
}

/** The init container; it tells the shim the volume's limit (KiB), which the kubelet enforces by eviction. */
function shimInstaller(s: InjectionSettings, volumeKiB: number): V1Container {
  return {
    name: SHIM_INIT_CONTAINER,
    image: s.shimImage,
    imagePullPolicy: 'IfNotPresent',
    // The shim image is built from scratch: its own static busybox is the shell.
    command: [`${s.shimSource}/busybox`, 'sh', `${s.shimSource}/install`, SHIM_MOUNT, String(volumeKiB)],
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
function wrapCommand(c: V1Container, annotations: Record<string, string>, warnings: string[], limitKiB?: number): boolean {
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
  c.command = [SUPERVISOR, '--name', c.name, ...(limitKiB !== undefined ? ['--limit-kib', String(limitKiB)] : []), '--', ...command];
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

/**
 * Makes a supervised container's liveness probe keep the scene: the same check, run by
 * the shim's `probe --live`, which passes while the supervisor holds the container or the
 * pod is quarantined, and while the supervisor restarts the app (its back-off, then the
 * start allowance the user gave the container: initialDelaySeconds, plus what a startup
 * probe allows). Timing fields stay as written, but for the kubelet's timeout, which gets room for the exec. Returns false where the probe is left
 * as it is (gRPC probes, an unknown named port, or one already rewritten).
 */
function keepSceneLiveness(c: V1Container, warnings: string[]): boolean {
  const { exec, httpGet, tcpSocket, grpc, ...timing } = c.livenessProbe!;
  if (exec?.command?.[0] === PROBE) return true;
  // The start allowance a restarted app gets: what the user gave the container's start.
  const allowance = (timing.initialDelaySeconds ?? 0) + startupBudget(c);
  const head = [PROBE, '--live', c.name, '--timeout', String(timing.timeoutSeconds ?? 1), ...(allowance > 0 ? ['--start-allowance', String(allowance)] : [])];
  let check: string[] | undefined;
  let needsPodIp = false;
  if (exec?.command?.length) {
    check = ['exec', '--', ...exec.command];
  } else if (httpGet) {
    const port = containerPort(c, httpGet.port);
    if (port !== undefined) {
      const headers = (httpGet.httpHeaders ?? []).map((h) => `${h.name}: ${h.value}`);
      check = ['http', (httpGet.scheme ?? 'HTTP').toLowerCase(), httpGet.host ?? '', String(port), httpGet.path ?? '/', ...headers];
      needsPodIp = !httpGet.host;
    }
  } else if (tcpSocket) {
    const port = containerPort(c, tcpSocket.port);
    if (port !== undefined) {
      check = ['tcp', tcpSocket.host ?? '', String(port)];
      needsPodIp = !tcpSocket.host;
    }
  }
  if (!check) {
    const what = grpc ? 'a gRPC liveness probe' : 'a liveness probe on an unknown named port';
    warnings.push(`sickbay: container "${c.name}" has ${what}; it is left as written and may restart the container while sickbay keeps its scene`);
    return false;
  }
  // The check keeps the user's timeout (the wrapper enforces it); the kubelet's gets room
  // for the exec itself (runc exec and a shell, a second or more on a busy node), which the
  // kubelet's own HTTP or TCP probe did not pay: without it a healthy app answering in
  // 0.9 s of a 1 s timeout would be restarted.
  c.livenessProbe = { ...timing, timeoutSeconds: (timing.timeoutSeconds ?? 1) + EXEC_PROBE_HEADROOM_SECONDS, exec: { command: [...head, ...check] } };
  if (needsPodIp && !c.env?.some((e) => e.name === POD_IP_ENV)) {
    c.env = [...(c.env ?? []), { name: POD_IP_ENV, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }];
  }
  return true;
}

const POD_IP_ENV = 'SICKBAY_POD_IP';
/** Seconds the kubelet's timeout of a wrapped liveness probe adds to the user's, for the exec. */
export const EXEC_PROBE_HEADROOM_SECONDS = 2;

/** The seconds a startup probe allows before liveness checks begin (Kubernetes' defaults: period 10, threshold 3). */
function startupBudget(c: V1Container): number {
  const s = c.startupProbe;
  if (!s) return 0;
  return (s.initialDelaySeconds ?? 0) + (s.periodSeconds ?? 10) * (s.failureThreshold ?? 3);
}

function containerPort(c: V1Container, port: IntOrString): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

function supervisorReadiness(name: string): V1Probe {
  return { exec: { command: [PROBE, name] }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 1, successThreshold: 1 };
}

function httpReadiness(p: { port: number; path: string }): V1Probe {
  return { httpGet: { port: p.port, path: p.path }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 1 };
}
