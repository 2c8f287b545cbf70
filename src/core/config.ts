// The one place sickbay reads its configuration. Every setting is an environment
// variable (the Helm chart sets them), declared once below: its parser, its default and
// what it means. The configuration's type, readConfig and docs/reference/configuration.md
// (config-docs.ts) derive from the declarations; readConfig gives each component its part.
import { CHECK_NAMES, type CheckName, parseProcessSpecs, type ProcessSpec } from './agent-settings.js';
import { bool, custom, duration, list, num, oneOf, readSettings, type Setting, text } from './settings.js';

export { ConfigError, parseDuration } from './settings.js';

/** "51%" or "0.51", a share between 0 and 1. */
function parseShare(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(v);
  const n = m ? (m[2] ? Number(m[1]) / 100 : Number(m[1])) : NaN;
  if (!(n >= 0 && n <= 1)) throw new Error('not a share between 0 and 1 (51% or 0.51)');
  return n;
}

/** "1Gi", "500Mi": bytes, at least 1 MiB. */
function parseSize(v: string): number {
  const m = /^\s*(\d+)\s*(Ki|Mi|Gi)?\s*$/.exec(v);
  const n = m ? Number(m[1]) * ({ Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[m[2] ?? ''] ?? 1) : NaN;
  if (!(n >= 2 ** 20)) throw new Error('a size of at least 1Mi, such as 1Gi or 500Mi');
  return n;
}

function parseCheckNames(v: string): CheckName[] {
  const names = v.split(',').map((x) => x.trim()).filter(Boolean);
  const unknown = names.find((x) => !(CHECK_NAMES as readonly string[]).includes(x));
  if (unknown) throw new Error(`unknown check ${JSON.stringify(unknown)} (known: ${CHECK_NAMES.join(', ')})`);
  return names as CheckName[];
}

export interface RegistrySettings {
  name: string;
  connect: string;
  digest?: string;
  interfaceRoots?: string[];
  servicesRoot?: string;
}

const REGISTRY_SHAPE = '(expected a JSON array of {name, connect, digest?, interfaceRoots?, servicesRoot?})';
/** A JSON array of registries. */
function parseRegistries(v: string): RegistrySettings[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (err) {
    throw new Error(`${(err as Error).message} ${REGISTRY_SHAPE}`, { cause: err });
  }
  if (!Array.isArray(parsed)) throw new Error(`not an array ${REGISTRY_SHAPE}`);
  const problems: string[] = [];
  const str = (x: unknown) => typeof x === 'string';
  parsed.forEach((r: unknown, i) => {
    if (!r || typeof r !== 'object' || Array.isArray(r)) return void problems.push(`${i}: not an object`);
    const o = r as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['name', 'connect', 'digest', 'interfaceRoots', 'servicesRoot'].includes(k)) problems.push(`${i}.${k}: not a registry field`);
    for (const k of ['name', 'connect'] as const) if (!str(o[k]) || !(o[k] as string).length) problems.push(`${i}.${k}: a non-empty string`);
    for (const k of ['digest', 'servicesRoot'] as const) if (o[k] !== undefined && !str(o[k])) problems.push(`${i}.${k}: a string`);
    if (o.interfaceRoots !== undefined && !(Array.isArray(o.interfaceRoots) && o.interfaceRoots.every((x) => str(x) && (x as string).startsWith('/')))) problems.push(`${i}.interfaceRoots: absolute paths`);
  });
  if (problems.length) throw new Error(`${problems.join('; ')} ${REGISTRY_SHAPE}`);
  return parsed as RegistrySettings[];
}

export const SETTINGS = {
  // Server
  SICKBAY_PORT: num(0, 65535, '8443', "HTTPS port for `/mutate`, `/validate`, `/alerts`, `/healthz`, `/readyz`, `/metrics`"),
  SICKBAY_BIND_ADDRESS: text('0.0.0.0', "address to listen on"),
  SICKBAY_HEALTH_PORT: num(0, 65535, '0', "a plain-HTTP port on the same address serving `/healthz` and `/readyz` alone, so the kubelet's probes never wait behind HTTPS load or its connection cap (the chart sets 8081); `0`: none"),
  SICKBAY_TLS_CERT: text('certs/tls.crt', "serving certificate; reloaded when the files change (TLS 1.2+)"),
  SICKBAY_TLS_KEY: text('certs/tls.key', "serving certificate; reloaded when the files change (TLS 1.2+)"),
  SICKBAY_TLS_CA: text('certs/ca.crt', "the CA that signed the serving certificate"),
  SICKBAY_CA_BUNDLE_SYNC: bool('false', "keep the webhook configurations' CA bundle equal to `SICKBAY_TLS_CA` (self-managed certificates)"),
  SICKBAY_TLS_SECRET: text('', "self-managed certificates made in the cluster: a Secret in `SICKBAY_NAMESPACE` that sickbay creates when missing (a CA and a serving certificate), renews in the last third of the certificate's life (at most 30 days before it ends), and writes to the three files above; replicas starting together make one"),
  SICKBAY_TLS_DNS_NAMES: list('', "with `SICKBAY_TLS_SECRET`: the names and addresses of the serving certificate (comma-separated)"),
  SICKBAY_TLS_IP_ADDRESSES: list('', "with `SICKBAY_TLS_SECRET`: the names and addresses of the serving certificate (comma-separated)"),
  // Days; a fraction for tests of a rotation (1/720: two minutes).
  SICKBAY_TLS_VALIDITY_DAYS: num(1 / 1440, 36500, '3650', "with `SICKBAY_TLS_SECRET`: the lifetime of the CA and of each serving certificate"),
  SICKBAY_WEBHOOK_CONFIGURATION: text('sickbay', "name of the two webhook configurations kept in sync"),
  SICKBAY_DRAIN: duration('5s', "on SIGTERM: readiness fails, the server keeps serving this long, then closes"),
  SICKBAY_MAX_BODY_BYTES: num(1024, 64 * 1024 * 1024, '3145728', "larger admission or alert bodies get HTTP 413; admission bodies of four times this in all are reviewed at once, beyond that HTTP 429"),
  SICKBAY_LOG_LEVEL: oneOf(['error', 'warn', 'info', 'debug'], 'info', "`error`, `warn`, `info`, `debug` (JSON logs)"),
  // Identity
  SICKBAY_NAMESPACE: text('sickbay-system', "sickbay's namespace (its Lease lives there; never injected)"),
  SICKBAY_SERVICE_ACCOUNT: text('sickbay', "its ServiceAccount: the identity the relabel guard lets through"),
  SICKBAY_POD_NAME: text('', "identity in the leader Lease", { shown: 'host name + random' }),
  // Injection
  SICKBAY_SHIM_IMAGE: text('ghcr.io/sickbay-dev/sickbay-shim:0.1.0', "image carrying the shim, mounted as an image volume or run as the init container (the Dockerfile's `shim` target, ~2 MB)"),
  SICKBAY_SHIM_PULL_SECRETS: list('', "comma-separated Secret names added to injected pods' `imagePullSecrets` to pull that image (each must exist in the pod's namespace)", { each: /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, message: 'is not a Secret name (lowercase letters, digits, - and .)' }),
  SICKBAY_SHIM_SOURCE: text('/opt/sickbay/shim', "where that image carries the shim"),
  SICKBAY_SHIM_DELIVERY: oneOf(['auto', 'image-volume', 'init-container'], 'auto', "how injected pods get the shim: `image-volume` mounts it read-only from the shim image (no init container: a faster start), `init-container` copies it; `auto` uses the image volume while every node runs a kubelet of 1.35 or later and containerd 2.1 or later, the init container otherwise (docs/concepts.md)"),
  // Controllers
  SICKBAY_CONTROLLERS: bool('true', "run the controllers (`false`: webhook only)"),
  SICKBAY_LEADER_ELECTION: bool('true', "elect a leader on a Lease; only it runs controllers"),
  SICKBAY_LEASE_NAME: text('sickbay-controller', "the Lease"),
  SICKBAY_LEASE_DURATION: duration('15s', "leader election timing"),
  SICKBAY_RENEW_DEADLINE: duration('10s', "leader election timing"),
  SICKBAY_RETRY_PERIOD: duration('2s', "leader election timing"),
  SICKBAY_DRY_RUN: bool('false', "audit mode: change no pod, node or workload; inject nothing; log and write only `Would*` Events"),
  SICKBAY_NOT_READY_GRACE: duration('10s', "how long a pod that was Ready may be NotReady before quarantine"),
  SICKBAY_MAX_QUARANTINED: num(0, 1000, '1', "quarantined pods kept per workload (Deployment annotation `sickbay.io/max-quarantined` overrides)"),
  SICKBAY_SYSTEMIC_FAILURE_RATIO: num(0, 1, '0.5', "above this share of a workload failing together, do nothing"),
  SICKBAY_QUARANTINE_RATE_PER_MINUTE: num(1, 100000, '30', "cluster-wide quarantine rate limit"),
  SICKBAY_BACKOFF_AFTER: num(1, 1000, '5', "per workload: after this many quarantines and deletions within the window, stop acting on it"),
  SICKBAY_BACKOFF_WINDOW: duration('15m', "the window of `SICKBAY_BACKOFF_AFTER`"),
  SICKBAY_QUARANTINE_TTL: duration('24h', "a quarantined pod is deleted this long after its quarantine, and its scene (the dumps in its `/sickbay` volume) with it; `never` (or `0`) keeps it until `sickbay release` or a person deletes it (`sickbay.io/expires-at: never`)", { never: true }),
  SICKBAY_RESYNC: duration('5m', "informers replay their cache this often"),
  SICKBAY_ALERTS_TOKEN: text('', "bearer token Alertmanager must send", { shown: '(empty: `/alerts` disabled)' }),
  SICKBAY_ALERTS_RATE_PER_MINUTE: num(1, 100000, '60', "`POST /alerts` requests a minute per replica; beyond, 429 with `Retry-After`"),
  SICKBAY_REGISTRIES: custom('[]', "JSON array of ZooKeeper registries: `{\"name\", \"connect\": \"host:port,...[/chroot]\", \"digest\"?: \"user:pass\", \"interfaceRoots\"?: [\"/dubbo\"], \"servicesRoot\"?: \"/services\"}`", parseRegistries),
  SICKBAY_NEVER_READY_AFTER: duration('3m', "a pod never Ready for this long (from creation) is deleted and its node avoided"),
  SICKBAY_AVOID_NODES_TTL: duration('1h', "how long a node stays in a Deployment's avoid-list"),
  SICKBAY_DIAGNOSTICS: bool('true', "run the diagnostics script in quarantined pods"),
  SICKBAY_DIAGNOSTICS_TIMEOUT: duration('2m', "the script is cut off after this"),
  SICKBAY_CHECKPOINT_TIMEOUT: duration('3m', "a quarantined pod with `sickbay.io/checkpoint: \"true\"` (or its namespace) has its supervised containers checkpointed by its node's agent before the dump scripts run; they wait this long for the agent's answer, then run anyway (the checkpoint is then recorded as timed out)"),
  // The scene archive (an S3-compatible object store)
  SICKBAY_ARCHIVE_ENDPOINT: text('', "the scene archive: an S3-compatible object store (`https://host[:port]`, path-style); set, sickbay writes each scene's bundle (what `sickbay collect` writes) there before it deletes a quarantined pod (its TTL, a release) or a failing one beyond the quota; unset, no archive", { pattern: /^https?:\/\/[^/\s]+\/?$/, message: 'an http(s) URL with no path, such as https://s3.example.com or https://minio.storage:9000', orEmpty: true }),
  SICKBAY_ARCHIVE_BUCKET: text('', "with an endpoint: the bucket (it must exist)", { pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, message: 'an S3 bucket name (3-63 of a-z, 0-9, dots and hyphens)', orEmpty: true }),
  SICKBAY_ARCHIVE_PREFIX: text('sickbay/', "keys are `<prefix><namespace>/<kind>-<workload>/<pod>_<time>.tar.gz`", { pattern: /^([A-Za-z0-9._-]+\/)*$/, message: 'folders ending in a slash, such as sickbay/ or clusters/prod/sickbay/ (or empty)' }),
  SICKBAY_ARCHIVE_REGION: text('us-east-1', "the region requests are signed for (AWS Signature Version 4)"),
  SICKBAY_ARCHIVE_ACCESS_KEY_ID: text('', "with an endpoint: the credentials (the chart takes them from a Secret)"),
  SICKBAY_ARCHIVE_SECRET_ACCESS_KEY: text('', "with an endpoint: the credentials (the chart takes them from a Secret)"),
  SICKBAY_ARCHIVE_CA_FILE: text('', "a PEM CA to trust for the endpoint, besides the system's"),
  SICKBAY_ARCHIVE_MAX_SIZE: custom('1Gi', "a bundle's content at most (streamed in 8 MiB parts; what does not fit is listed in its `MANIFEST` as left out)", parseSize),
  SICKBAY_ARCHIVE_MAX_DELAY: duration('1h', "a failing archive holds back a quarantined pod's deletion (retried with back-off, Event `ArchiveFailed`) at most this long past its due time; then the pod is deleted with a Warning Event `DeletedWithoutArchive`"),
  SICKBAY_ARCHIVE_OVER_QUOTA_KEEP: duration('30s', "with an archive, a failing pod beyond its workload's quota is not evicted at once: it is taken out of service as a quarantine (its replacement starts at once), dumped, kept this long, then archived and deleted (Events `KeptForArchive`, then `FailingPodDeleted`)"),
  SICKBAY_REPAIR_RESTART: bool('false', "restart Deployments whose pods escaped injection, once the webhook works"),
  // Nodes: the controller
  SICKBAY_NODE_CONTROLLER: bool('true', "run the node controller (leader only)"),
  SICKBAY_HEARTBEAT_INTERVAL: duration('10s', "agent: heartbeat interval; controller: the interval assumed when a NodeHealth does not say"),
  SICKBAY_NODE_MISSED_HEARTBEATS: num(1, 100, '3', "a heartbeat older than this many intervals makes the node faulty"),
  SICKBAY_NODE_LOCK_DURATION: duration('45m', "protection lock taken at isolation (30m-60m)"),
  SICKBAY_NODE_ISOLATION_BUDGET: text('10%', "most nodes isolated at once: a share of the nodes (rounded down) or a count; at least 1", { pattern: /^\s*\d+(\.\d+)?\s*%?\s*$/, message: 'a count like 2 or a share like 10%' }),
  SICKBAY_NODE_MIN_HEALTHY: custom('51%', "isolate nothing while fewer than this share of the reporting nodes (not in maintenance) are healthy; `0` turns it off", parseShare),
  SICKBAY_NODE_MIN_HEALTHY_GROUP_LABEL: text('', "a node label such as `karpenter.sh/nodepool` or `cloud.google.com/gke-nodepool`: the same share must also hold within each group of nodes sharing its value (as a Node Healthcheck per node selector); a pool under it keeps its nodes (Event `IsolationHeld`) while other pools are isolated as usual", { pattern: /^([a-z0-9.-]+\/)?[A-Za-z0-9._-]*$/, message: 'a node label key such as karpenter.sh/nodepool' }),
  SICKBAY_NODE_RECOVERY_AFTER: duration('45m', "restore an isolated node (taint and label removed, an Event `NodeRestored`) once its agent has reported it healthy for this long; `0`: only `sickbay node restore` does. The default equals the protection lock, so a node that fails again after its restore can be isolated again"),
  SICKBAY_NODE_HEALTH_CLEANUP_AFTER: duration('10m', "remove the NodeHealth of a node whose heartbeat is stale and on which no agent pod has run for this long (the agent DaemonSet no longer covers it: a changed `agent.nodeSelector`), with an Event `NodeHealthRemoved`; the node is then not judged until an agent reports again; `0`: never"),
  SICKBAY_NODE_DRY_RUN: bool('false', "node controller: Events only, no lock, taint or label"),
  // Nodes: the agent
  SICKBAY_NODE_NAME: text('', "agent: the node, if `--node-name` is not given"),
  SICKBAY_AGENT_CHECKS: custom(CHECK_NAMES.join(','), "agent: which checks run", parseCheckNames),
  SICKBAY_AGENT_CHECK_INTERVAL: duration('1s', "agent: how often the checks run"),
  SICKBAY_AGENT_FAILURE_THRESHOLD: num(1, 100, '3', "agent: failures in a row before a check fails"),
  SICKBAY_AGENT_PRESSURE_AFTER: duration('0', "agent: a MemoryPressure, DiskPressure or PIDPressure condition fails the `conditions` check only once it has lasted this long (`0`: never). Pressure is the kubelet's to remedy by evicting the pod that causes it, and any tenant can cause it"),
  SICKBAY_AGENT_KUBELET_URL: text('http://127.0.0.1:10248/healthz', "agent: kubelet health endpoint", { pattern: /^https?:\/\/[^\s/]+(\/\S*)?$/, message: 'an http(s) URL' }),
  SICKBAY_AGENT_NETWORK_TARGETS: list('', "agent: comma-separated `host:port` that must accept a TCP connection", { each: /^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/, message: 'is not host:port', shown: '(the API server)' }),
  SICKBAY_AGENT_PROCESSES: custom('auto', "agent: processes that must run and not be zombies. `auto`: those of the node's runtime, from its Node (`status.nodeInfo`; see \"Node agent\"); or a list (`a\\|b`: either; `@pod`: may run in a container's PID namespace, else only the host's counts; `?`: once seen)", (v): ProcessSpec[] | 'auto' => (v.trim() === 'auto' ? 'auto' : parseProcessSpecs(v))),
  SICKBAY_AGENT_PROC_ROOT: text('/proc', "agent: where to read processes (the host's `/proc` mounted in the container)"),
  SICKBAY_AGENT_NODE_CONDITION: text('', "agent: a Node condition type of its own to write on its node (`True` while a check fails, as Node Problem Detector does), e.g. `SickbayNodeProblem`; the chart's `agent.nodeCondition` also grants `nodes/status` and guards it", { pattern: /^([A-Z][A-Za-z0-9]{0,62})?$/, message: 'a condition type such as SickbayNodeProblem (letters and digits, starting with a capital), or empty' }),
  SICKBAY_AGENT_KUBELET_API: text('', "agent: its kubelet's API, `https://<node address>:10250`, for checkpoints (`POST /checkpoint/...`, the ContainerCheckpoint API; the agent needs `create` on `nodes/checkpoint`: the chart's `agent.checkpoints.enabled` sets both); unset, the agent answers each checkpoint request with why it cannot take it", { pattern: /^https:\/\/[^/\s]+\/?$/, message: 'the kubelet API as https://<node address>:10250', orEmpty: true, shown: '(none: checkpoints off)' }),
  SICKBAY_AGENT_KUBELET_CA: text('', "agent: a PEM CA for the kubelet's serving certificate", { shown: "(the API server's CA)" }),
  SICKBAY_AGENT_KUBELET_INSECURE: bool('false', "agent: do not verify the kubelet's serving certificate (self-signed kubelet certificates; as metrics-server's `--kubelet-insecure-tls`)"),
  SICKBAY_AGENT_CHECKPOINT_TIMEOUT: duration('2m', "agent: how long the kubelet may take over one checkpoint"),
  SICKBAY_AGENT_CHECKPOINT_DIR: text('/var/lib/kubelet/checkpoints', "agent: the kubelet's checkpoints folder, mounted at the same path; archives are measured there and removed from there (and from nowhere else) once their scene is gone", { pattern: /^\//, message: 'an absolute path' }),
  SICKBAY_AGENT_PORT: num(0, 65535, '8081', "agent: plain HTTP `/healthz` and `/metrics` (0: off)"),
  SICKBAY_AGENT_BIND_ADDRESS: text('', "agent: the address `/healthz` and `/metrics` listen on (`127.0.0.1`: the node alone)", { shown: "(empty: every interface; the chart sets the node's own address)" }),
} satisfies Record<string, Setting<unknown>>;

/** The settings that depend on each other, checked together once each is valid. */
function crossChecks(c: RawConfig): Array<[keyof RawConfig & string, string]> {
  const problems: Array<[keyof RawConfig & string, string]> = [];
  if (c.SICKBAY_RENEW_DEADLINE >= c.SICKBAY_LEASE_DURATION) problems.push(['SICKBAY_RENEW_DEADLINE', 'must be shorter than SICKBAY_LEASE_DURATION']);
  if (c.SICKBAY_ARCHIVE_ENDPOINT) {
    for (const k of ['SICKBAY_ARCHIVE_BUCKET', 'SICKBAY_ARCHIVE_ACCESS_KEY_ID', 'SICKBAY_ARCHIVE_SECRET_ACCESS_KEY'] as const) {
      if (!c[k]) problems.push([k, 'must be set with SICKBAY_ARCHIVE_ENDPOINT']);
    }
  }
  const lockMinutes = c.SICKBAY_NODE_LOCK_DURATION / 60_000;
  if (lockMinutes < 30 || lockMinutes > 60) problems.push(['SICKBAY_NODE_LOCK_DURATION', 'must be between 30m and 60m']);
  return problems;
}

/** Every setting's value, by variable name. */
export type RawConfig = { [K in keyof typeof SETTINGS]: ReturnType<(typeof SETTINGS)[K]['parse']> };

/** The HTTPS server: the webhook, /alerts, health and metrics. */
export interface ServerConfig {
  port: number;
  bindAddress: string;
  /** A plain-HTTP listener for /healthz and /readyz alone, so probes never queue behind HTTPS load; 0: none. */
  healthPort: number;
  tlsCertFile: string;
  tlsKeyFile: string;
  drainMs: number;
  maxBodyBytes: number;
  /** Self-managed certificates: keep the webhook configurations' CA bundle equal to this file. */
  caBundleSync: { enabled: boolean; caFile: string; configurationName: string };
  /** Self-managed certificates generated in the cluster: the Secret (in the identity's namespace) and what goes into it. */
  tlsSecret?: { name: string; dnsNames: string[]; ipAddresses: string[]; validityDays: number };
}

/** Who this replica is. */
export interface IdentityConfig {
  namespace: string;
  serviceAccount: string;
  /** The username the API server gives sickbay's ServiceAccount. */
  serviceAccountUsername: string;
  podName: string;
  /** HOSTNAME (a pod's name): the instance that reports sickbay's Events. */
  host: string;
}

/** The mutating webhook. */
export interface InjectionConfig {
  shimImage: string;
  /** Secrets (in each pod's namespace) the kubelet uses to pull the shim image; added to injected pods. */
  shimPullSecrets: string[];
  shimSource: string;
  /** How pods get the shim: `auto` picks the image volume where every node's runtime mounts one executable (src/webhook/shim-delivery.ts). */
  shimDelivery: 'auto' | ShimDelivery;
  dryRun: boolean;
}

export type ShimDelivery = 'image-volume' | 'init-container';

export interface LeaderElectionConfig {
  enabled: boolean;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** The pod isolation controller. */
export interface QuarantineConfig {
  dryRun: boolean;
  notReadyGraceMs: number;
  maxQuarantined: number;
  systemicFailureRatio: number;
  ratePerMinute: number;
  /** After this many quarantines and deletions of one workload within backoffWindowMs, sickbay stops acting on it. */
  backoffAfter: number;
  backoffWindowMs: number;
  /** Quarantined pods are deleted this long after their quarantine; 0 (`never` or `0`): kept until a release. */
  ttlMs: number;
}

/** POST /alerts. */
export interface AlertsConfig {
  token: string;
  /** Requests a minute (429 beyond). */
  ratePerMinute: number;
  maxBodyBytes: number;
}

/** The never-Ready controller and node avoidance. */
export interface NeverReadyConfig {
  dryRun: boolean;
  afterMs: number;
  avoidNodesTtlMs: number;
  systemicFailureRatio: number;
  ratePerMinute: number;
  /** The same per-workload back-off as quarantines. */
  backoffAfter: number;
  backoffWindowMs: number;
}

/** Pods that escaped injection. */
export interface RepairConfig {
  dryRun: boolean;
  /** Restart Deployments whose pods escaped injection (they are reported either way). */
  restart: boolean;
  /** sickbay's own namespace: its pods are never reported. */
  ownNamespace: string;
}

/** The node controller. */
export interface NodeControllerConfig {
  enabled: boolean;
  dryRun: boolean;
  /** Where the protection locks (Leases) live: sickbay's namespace. */
  namespace: string;
  /** The leader's own Lease, never taken for a node lock. */
  leaderLeaseName: string;
  resyncMs: number;
  heartbeatIntervalMs: number;
  missedHeartbeats: number;
  lockDurationMs: number;
  isolationBudget: string;
  /** 0-1: below this share of healthy nodes, isolate nothing. */
  minHealthy: number;
  /** A node label (a node pool's): minHealthy also holds within each group of nodes sharing its value. Empty: the whole cluster only. */
  minHealthyGroupLabel: string;
  recoveryAfterMs: number;
  /** A NodeHealth whose node has had no agent pod at all for this long is removed; 0: never. */
  healthCleanupAfterMs: number;
}

/** The node agent (`sickbay agent`). */
export interface AgentConfig {
  nodeName: string;
  checks: CheckName[];
  checkIntervalMs: number;
  failureThreshold: number;
  /** A pressure condition fails the conditions check once it has lasted this long; 0: never. */
  pressureAfterMs?: number;
  heartbeatIntervalMs: number;
  kubeletUrl: string;
  /** Empty: the API server the kubeconfig points at. */
  networkTargets: string[];
  processes: ProcessSpec[] | 'auto';
  procRoot: string;
  /** A Node condition the agent writes on its own Node; unset: none. */
  nodeCondition?: string;
  port: number;
  /** Empty: every interface. The chart binds the node's own address. */
  bindAddress: string;
  /** Checkpoints through the kubelet of this node (kubeletApi empty: off). */
  checkpoints: CheckpointSettings;
}

/** The agent's checkpoints through its node's kubelet. */
export interface CheckpointSettings {
  /** The kubelet's API of this node, `https://<node address>:10250`; empty: checkpoints are off here. */
  kubeletApi: string;
  /** A CA file for the kubelet's serving certificate; empty: the API server's CA (what the agent's kubeconfig trusts). */
  kubeletCaFile: string;
  /** Skip verifying the kubelet's certificate (self-signed kubelet certificates, as metrics-server's --kubelet-insecure-tls). */
  kubeletInsecure: boolean;
  /** How long the kubelet may take over one checkpoint (its `timeout` parameter). */
  timeoutMs: number;
  /**
   * The kubelet's checkpoints folder as the agent sees it (`<kubelet root>/checkpoints`,
   * mounted at the same path): the sizes are read there, and only archives there are ever
   * removed, whatever a record says.
   */
  archiveDir: string;
}

/** The whole configuration, by component: each receives its part. */
export interface Config {
  logLevel: RawConfig['SICKBAY_LOG_LEVEL'];
  server: ServerConfig;
  identity: IdentityConfig;
  injection: InjectionConfig;
  /** Run the controllers (off: the webhook only). */
  controllers: boolean;
  /** How often the informers replay their caches. */
  resyncMs: number;
  leaderElection: LeaderElectionConfig;
  quarantine: QuarantineConfig;
  alerts: AlertsConfig;
  neverReady: NeverReadyConfig;
  repair: RepairConfig;
  registries: RegistrySettings[];
  diagnostics: { enabled: boolean; timeoutMs: number };
  /** How long a quarantine's diagnostics wait for the node agent's checkpoint (`sickbay.io/checkpoint`). */
  checkpoint: { timeoutMs: number };
  /** Where scenes go before sickbay deletes them; undefined: no archive. */
  archive?: ArchiveConfig;
  node: NodeControllerConfig;
  agent: AgentConfig;
}

export interface ArchiveConfig {
  store: { endpoint: string; bucket: string; prefix: string; region: string; accessKeyId: string; secretAccessKey: string; caFile?: string };
  /** A bundle's content bytes at most (what does not fit is listed in its MANIFEST as left out). */
  maxBytes: number;
  /** How long a failing archive may hold back a deletion (from when it was due); then the pod goes, with an Event. */
  maxDelayMs: number;
  /** How long a failing pod beyond its quota is kept out of service for its dumps before it is archived and deleted. */
  overQuotaKeepMs: number;
}

/** The archive settings alone (the CLI's `sickbay archives` reads just these); undefined when no endpoint is set. */
export function readArchiveConfig(env: NodeJS.ProcessEnv = process.env): ArchiveConfig | undefined {
  return readConfig(Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('SICKBAY_ARCHIVE_')))).archive;
}

/** The namespace the CLI's commands look in unless told: SICKBAY_NAMESPACE, as `serve` reads it. */
export function cliNamespace(env: NodeJS.ProcessEnv = process.env): string {
  return env.SICKBAY_NAMESPACE || SETTINGS.SICKBAY_NAMESPACE.default;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const c = readSettings(SETTINGS, env, crossChecks);
  const dryRun = c.SICKBAY_DRY_RUN;
  return {
    logLevel: c.SICKBAY_LOG_LEVEL,
    server: {
      port: c.SICKBAY_PORT,
      bindAddress: c.SICKBAY_BIND_ADDRESS,
      healthPort: c.SICKBAY_HEALTH_PORT,
      tlsCertFile: c.SICKBAY_TLS_CERT,
      tlsKeyFile: c.SICKBAY_TLS_KEY,
      drainMs: c.SICKBAY_DRAIN,
      maxBodyBytes: c.SICKBAY_MAX_BODY_BYTES,
      caBundleSync: { enabled: c.SICKBAY_CA_BUNDLE_SYNC, caFile: c.SICKBAY_TLS_CA, configurationName: c.SICKBAY_WEBHOOK_CONFIGURATION },
      tlsSecret: c.SICKBAY_TLS_SECRET
        ? { name: c.SICKBAY_TLS_SECRET, dnsNames: c.SICKBAY_TLS_DNS_NAMES, ipAddresses: c.SICKBAY_TLS_IP_ADDRESSES, validityDays: c.SICKBAY_TLS_VALIDITY_DAYS }
        : undefined,
    },
    identity: {
      namespace: c.SICKBAY_NAMESPACE,
      serviceAccount: c.SICKBAY_SERVICE_ACCOUNT,
      serviceAccountUsername: `system:serviceaccount:${c.SICKBAY_NAMESPACE}:${c.SICKBAY_SERVICE_ACCOUNT}`,
      podName: c.SICKBAY_POD_NAME,
      host: env.HOSTNAME ?? '',
    },
    injection: { shimImage: c.SICKBAY_SHIM_IMAGE, shimPullSecrets: c.SICKBAY_SHIM_PULL_SECRETS, shimSource: c.SICKBAY_SHIM_SOURCE, shimDelivery: c.SICKBAY_SHIM_DELIVERY, dryRun },
    controllers: c.SICKBAY_CONTROLLERS,
    resyncMs: c.SICKBAY_RESYNC,
    leaderElection: {
      enabled: c.SICKBAY_LEADER_ELECTION,
      leaseName: c.SICKBAY_LEASE_NAME,
      leaseDurationMs: c.SICKBAY_LEASE_DURATION,
      renewDeadlineMs: c.SICKBAY_RENEW_DEADLINE,
      retryPeriodMs: c.SICKBAY_RETRY_PERIOD,
    },
    quarantine: {
      dryRun,
      notReadyGraceMs: c.SICKBAY_NOT_READY_GRACE,
      maxQuarantined: c.SICKBAY_MAX_QUARANTINED,
      systemicFailureRatio: c.SICKBAY_SYSTEMIC_FAILURE_RATIO,
      ratePerMinute: c.SICKBAY_QUARANTINE_RATE_PER_MINUTE,
      backoffAfter: c.SICKBAY_BACKOFF_AFTER,
      backoffWindowMs: c.SICKBAY_BACKOFF_WINDOW,
      ttlMs: c.SICKBAY_QUARANTINE_TTL,
    },
    alerts: { token: c.SICKBAY_ALERTS_TOKEN, ratePerMinute: c.SICKBAY_ALERTS_RATE_PER_MINUTE, maxBodyBytes: c.SICKBAY_MAX_BODY_BYTES },
    neverReady: {
      dryRun,
      afterMs: c.SICKBAY_NEVER_READY_AFTER,
      avoidNodesTtlMs: c.SICKBAY_AVOID_NODES_TTL,
      systemicFailureRatio: c.SICKBAY_SYSTEMIC_FAILURE_RATIO,
      ratePerMinute: c.SICKBAY_QUARANTINE_RATE_PER_MINUTE,
      backoffAfter: c.SICKBAY_BACKOFF_AFTER,
      backoffWindowMs: c.SICKBAY_BACKOFF_WINDOW,
    },
    repair: { dryRun, restart: c.SICKBAY_REPAIR_RESTART, ownNamespace: c.SICKBAY_NAMESPACE },
    registries: c.SICKBAY_REGISTRIES,
    diagnostics: { enabled: c.SICKBAY_DIAGNOSTICS, timeoutMs: c.SICKBAY_DIAGNOSTICS_TIMEOUT },
    checkpoint: { timeoutMs: c.SICKBAY_CHECKPOINT_TIMEOUT },
    archive: c.SICKBAY_ARCHIVE_ENDPOINT
      ? {
          store: {
            endpoint: c.SICKBAY_ARCHIVE_ENDPOINT.replace(/\/$/, ''),
            bucket: c.SICKBAY_ARCHIVE_BUCKET,
            prefix: c.SICKBAY_ARCHIVE_PREFIX,
            region: c.SICKBAY_ARCHIVE_REGION,
            accessKeyId: c.SICKBAY_ARCHIVE_ACCESS_KEY_ID,
            secretAccessKey: c.SICKBAY_ARCHIVE_SECRET_ACCESS_KEY,
            caFile: c.SICKBAY_ARCHIVE_CA_FILE || undefined,
          },
          maxBytes: c.SICKBAY_ARCHIVE_MAX_SIZE,
          maxDelayMs: c.SICKBAY_ARCHIVE_MAX_DELAY,
          overQuotaKeepMs: c.SICKBAY_ARCHIVE_OVER_QUOTA_KEEP,
        }
      : undefined,
    node: {
      enabled: c.SICKBAY_NODE_CONTROLLER,
      dryRun: c.SICKBAY_NODE_DRY_RUN || dryRun,
      namespace: c.SICKBAY_NAMESPACE,
      leaderLeaseName: c.SICKBAY_LEASE_NAME,
      resyncMs: c.SICKBAY_RESYNC,
      heartbeatIntervalMs: c.SICKBAY_HEARTBEAT_INTERVAL,
      missedHeartbeats: c.SICKBAY_NODE_MISSED_HEARTBEATS,
      lockDurationMs: c.SICKBAY_NODE_LOCK_DURATION,
      isolationBudget: c.SICKBAY_NODE_ISOLATION_BUDGET.trim(),
      minHealthy: c.SICKBAY_NODE_MIN_HEALTHY,
      minHealthyGroupLabel: c.SICKBAY_NODE_MIN_HEALTHY_GROUP_LABEL,
      recoveryAfterMs: c.SICKBAY_NODE_RECOVERY_AFTER,
      healthCleanupAfterMs: c.SICKBAY_NODE_HEALTH_CLEANUP_AFTER,
    },
    agent: {
      nodeName: c.SICKBAY_NODE_NAME,
      checks: c.SICKBAY_AGENT_CHECKS,
      checkIntervalMs: c.SICKBAY_AGENT_CHECK_INTERVAL,
      failureThreshold: c.SICKBAY_AGENT_FAILURE_THRESHOLD,
      pressureAfterMs: c.SICKBAY_AGENT_PRESSURE_AFTER,
      heartbeatIntervalMs: c.SICKBAY_HEARTBEAT_INTERVAL,
      kubeletUrl: c.SICKBAY_AGENT_KUBELET_URL,
      networkTargets: c.SICKBAY_AGENT_NETWORK_TARGETS,
      processes: c.SICKBAY_AGENT_PROCESSES,
      procRoot: c.SICKBAY_AGENT_PROC_ROOT,
      nodeCondition: c.SICKBAY_AGENT_NODE_CONDITION || undefined,
      port: c.SICKBAY_AGENT_PORT,
      bindAddress: c.SICKBAY_AGENT_BIND_ADDRESS,
      checkpoints: {
        kubeletApi: c.SICKBAY_AGENT_KUBELET_API.replace(/\/$/, ''),
        kubeletCaFile: c.SICKBAY_AGENT_KUBELET_CA,
        kubeletInsecure: c.SICKBAY_AGENT_KUBELET_INSECURE,
        timeoutMs: c.SICKBAY_AGENT_CHECKPOINT_TIMEOUT,
        archiveDir: c.SICKBAY_AGENT_CHECKPOINT_DIR,
      },
    },
  };
}
