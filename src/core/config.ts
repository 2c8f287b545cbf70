// The one place sickbay reads its configuration. Every setting is an environment
// variable (the Helm chart sets them); docs/reference/configuration.md lists them all.
import { z } from 'zod';
import { CHECK_NAMES, type CheckName, parseProcessSpecs, type ProcessSpec } from './agent-settings.js';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const num = (min: number, max: number) => z.coerce.number().min(min).max(max);
/** "a,b,c": the items, blanks dropped. */
const list = z.string().default('').transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

/** "90s", "15m", "24h", "2d" or a number of seconds. */
export function parseDuration(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!m) throw new Error(`not a duration: ${JSON.stringify(value)} (use e.g. 30s, 15m, 24h)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = { ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 }[unit]!;
  return n * factor;
}

/** A duration, parsed to milliseconds. */
const duration = z.string().transform((v, ctx) => {
  try {
    return Math.round(parseDuration(v) * 1000);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** A duration, or `never`: 0, no end (as `0` is for the other durations). */
const durationOrNever = z.string().transform((v, ctx) => {
  if (v.trim() === 'never') return 0;
  try {
    return Math.round(parseDuration(v) * 1000);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${(err as Error).message}, or never` });
    return z.NEVER;
  }
});

/** "51%" or "0.51", a share between 0 and 1. */
const shareOf = z.string().transform((v, ctx) => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(v);
  const n = m ? (m[2] ? Number(m[1]) / 100 : Number(m[1])) : NaN;
  if (!(n >= 0 && n <= 1)) {
    ctx.addIssue({ code: 'custom', message: 'not a share between 0 and 1 (51% or 0.51)' });
    return z.NEVER;
  }
  return n;
});

const registriesSchema = z.array(
  z.object({
    name: z.string().min(1),
    connect: z.string().min(1),
    digest: z.string().optional(),
    interfaceRoots: z.array(z.string().startsWith('/')).optional(),
    servicesRoot: z.string().optional(),
  }).strict(),
);

/** A JSON array of registries. */
const registriesJson = z.string().transform((v, ctx) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `${(err as Error).message} (expected a JSON array of {name, connect, digest?, interfaceRoots?, servicesRoot?})` });
    return z.NEVER;
  }
  const r = registriesSchema.safeParse(parsed);
  if (!r.success) {
    ctx.addIssue({ code: 'custom', message: `${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} (expected a JSON array of {name, connect, digest?, interfaceRoots?, servicesRoot?})` });
    return z.NEVER;
  }
  return r.data;
});

const checkNames = list.transform((names, ctx) => {
  const unknown = names.find((x) => !(CHECK_NAMES as readonly string[]).includes(x));
  if (unknown) {
    ctx.addIssue({ code: 'custom', message: `unknown check ${JSON.stringify(unknown)} (known: ${CHECK_NAMES.join(', ')})` });
    return z.NEVER;
  }
  return names as CheckName[];
});

const processSpecs = z.string().transform((v, ctx): ProcessSpec[] | 'auto' => {
  if (v.trim() === 'auto') return 'auto';
  try {
    return parseProcessSpecs(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const hostPorts = list.transform((targets, ctx) => {
  const bad = targets.find((t) => !/^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/.test(t));
  if (bad) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(bad)} is not host:port` });
    return z.NEVER;
  }
  return targets;
});

export const configSchema = z.object({
  // Server
  SICKBAY_PORT: num(0, 65535).default(8443),
  SICKBAY_BIND_ADDRESS: z.string().default('0.0.0.0'),
  SICKBAY_HEALTH_PORT: num(0, 65535).default(0),
  SICKBAY_TLS_CERT: z.string().default('certs/tls.crt'),
  SICKBAY_TLS_KEY: z.string().default('certs/tls.key'),
  SICKBAY_TLS_CA: z.string().default('certs/ca.crt'),
  SICKBAY_CA_BUNDLE_SYNC: bool.default(false),
  SICKBAY_TLS_SECRET: z.string().default(''),
  SICKBAY_TLS_DNS_NAMES: list,
  SICKBAY_TLS_IP_ADDRESSES: list,
  // Days; a fraction for tests of a rotation (1/720: two minutes).
  SICKBAY_TLS_VALIDITY_DAYS: num(1 / 1440, 36500).default(3650),
  SICKBAY_WEBHOOK_CONFIGURATION: z.string().default('sickbay'),
  SICKBAY_DRAIN: duration.prefault('5s'),
  SICKBAY_MAX_BODY_BYTES: num(1024, 64 * 1024 * 1024).default(3 * 1024 * 1024),
  SICKBAY_LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  // Identity
  SICKBAY_NAMESPACE: z.string().default('sickbay-system'),
  SICKBAY_SERVICE_ACCOUNT: z.string().default('sickbay'),
  SICKBAY_POD_NAME: z.string().default(''),
  // Injection
  SICKBAY_SHIM_IMAGE: z.string().default('ghcr.io/sickbay-dev/sickbay-shim:0.1.0'),
  SICKBAY_SHIM_PULL_SECRETS: list.pipe(z.array(z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'a Secret name (lowercase letters, digits, - and .)'))),
  SICKBAY_SHIM_SOURCE: z.string().default('/opt/sickbay/shim'),
  SICKBAY_SHIM_DELIVERY: z.enum(['auto', 'image-volume', 'init-container']).default('auto'),
  // Controllers
  SICKBAY_CONTROLLERS: bool.default(true),
  SICKBAY_LEADER_ELECTION: bool.default(true),
  SICKBAY_LEASE_NAME: z.string().default('sickbay-controller'),
  SICKBAY_LEASE_DURATION: duration.prefault('15s'),
  SICKBAY_RENEW_DEADLINE: duration.prefault('10s'),
  SICKBAY_RETRY_PERIOD: duration.prefault('2s'),
  SICKBAY_DRY_RUN: bool.default(false),
  SICKBAY_NOT_READY_GRACE: duration.prefault('10s'),
  SICKBAY_MAX_QUARANTINED: num(0, 1000).default(1),
  SICKBAY_SYSTEMIC_FAILURE_RATIO: num(0, 1).default(0.5),
  SICKBAY_QUARANTINE_RATE_PER_MINUTE: num(1, 100000).default(30),
  SICKBAY_BACKOFF_AFTER: num(1, 1000).default(5),
  SICKBAY_BACKOFF_WINDOW: duration.prefault('15m'),
  SICKBAY_QUARANTINE_TTL: durationOrNever.prefault('24h'),
  SICKBAY_RESYNC: duration.prefault('5m'),
  SICKBAY_ALERTS_TOKEN: z.string().default(''),
  SICKBAY_ALERTS_RATE_PER_MINUTE: num(1, 100000).default(60),
  SICKBAY_REGISTRIES: registriesJson.default([]),
  SICKBAY_NEVER_READY_AFTER: duration.prefault('3m'),
  SICKBAY_AVOID_NODES_TTL: duration.prefault('1h'),
  SICKBAY_DIAGNOSTICS: bool.default(true),
  SICKBAY_DIAGNOSTICS_TIMEOUT: duration.prefault('2m'),
  SICKBAY_CHECKPOINT_TIMEOUT: duration.prefault('3m'),
  // The scene archive (an S3-compatible object store)
  SICKBAY_ARCHIVE_ENDPOINT: z.string().regex(/^https?:\/\/[^/\s]+\/?$/, 'an http(s) URL with no path, such as https://s3.example.com or https://minio.storage:9000').or(z.literal('')).default(''),
  SICKBAY_ARCHIVE_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3-63 of a-z, 0-9, dots and hyphens)').or(z.literal('')).default(''),
  SICKBAY_ARCHIVE_PREFIX: z.string().regex(/^([A-Za-z0-9._-]+\/)*$/, 'folders ending in a slash, such as sickbay/ or clusters/prod/sickbay/ (or empty)').default('sickbay/'),
  SICKBAY_ARCHIVE_REGION: z.string().min(1).default('us-east-1'),
  SICKBAY_ARCHIVE_ACCESS_KEY_ID: z.string().default(''),
  SICKBAY_ARCHIVE_SECRET_ACCESS_KEY: z.string().default(''),
  SICKBAY_ARCHIVE_CA_FILE: z.string().default(''),
  SICKBAY_ARCHIVE_MAX_SIZE: z.string().transform((v, ctx) => {
    const m = /^\s*(\d+)\s*(Ki|Mi|Gi)?\s*$/.exec(v);
    const n = m ? Number(m[1]) * ({ Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[m[2] ?? ''] ?? 1) : NaN;
    if (!(n >= 2 ** 20)) {
      ctx.addIssue({ code: 'custom', message: 'a size of at least 1Mi, such as 1Gi or 500Mi' });
      return z.NEVER;
    }
    return n;
  }).prefault('1Gi'),
  SICKBAY_ARCHIVE_MAX_DELAY: duration.prefault('1h'),
  SICKBAY_ARCHIVE_OVER_QUOTA_KEEP: duration.prefault('30s'),
  SICKBAY_REPAIR_RESTART: bool.default(false),
  // Nodes: the controller
  SICKBAY_NODE_CONTROLLER: bool.default(true),
  SICKBAY_HEARTBEAT_INTERVAL: duration.prefault('10s'),
  SICKBAY_NODE_MISSED_HEARTBEATS: num(1, 100).default(3),
  SICKBAY_NODE_LOCK_DURATION: duration.prefault('45m'),
  SICKBAY_NODE_ISOLATION_BUDGET: z.string().regex(/^\s*\d+(\.\d+)?\s*%?\s*$/, 'a count like 2 or a share like 10%').default('10%'),
  SICKBAY_NODE_MIN_HEALTHY: shareOf.default(0.51),
  SICKBAY_NODE_MIN_HEALTHY_GROUP_LABEL: z.string().regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9._-]*$/, 'a node label key such as karpenter.sh/nodepool').default(''),
  SICKBAY_NODE_RECOVERY_AFTER: duration.prefault('45m'),
  SICKBAY_NODE_HEALTH_CLEANUP_AFTER: duration.prefault('10m'),
  SICKBAY_NODE_DRY_RUN: bool.default(false),
  // Nodes: the agent
  SICKBAY_NODE_NAME: z.string().default(''),
  SICKBAY_AGENT_CHECKS: checkNames.default([...CHECK_NAMES]),
  SICKBAY_AGENT_CHECK_INTERVAL: duration.prefault('1s'),
  SICKBAY_AGENT_FAILURE_THRESHOLD: num(1, 100).default(3),
  SICKBAY_AGENT_PRESSURE_AFTER: duration.prefault('0'),
  SICKBAY_AGENT_KUBELET_URL: z.string().url().default('http://127.0.0.1:10248/healthz'),
  SICKBAY_AGENT_NETWORK_TARGETS: hostPorts,
  SICKBAY_AGENT_PROCESSES: processSpecs.default('auto'),
  SICKBAY_AGENT_PROC_ROOT: z.string().default('/proc'),
  SICKBAY_AGENT_NODE_CONDITION: z
    .string()
    .regex(/^([A-Z][A-Za-z0-9]{0,62})?$/, 'a condition type such as SickbayNodeProblem (letters and digits, starting with a capital), or empty')
    .default(''),
  SICKBAY_AGENT_KUBELET_API: z.string().regex(/^https:\/\/[^/\s]+\/?$/, 'the kubelet API as https://<node address>:10250').or(z.literal('')).default(''),
  SICKBAY_AGENT_KUBELET_CA: z.string().default(''),
  SICKBAY_AGENT_KUBELET_INSECURE: bool.default(false),
  SICKBAY_AGENT_CHECKPOINT_TIMEOUT: duration.prefault('2m'),
  SICKBAY_AGENT_CHECKPOINT_DIR: z.string().startsWith('/').default('/var/lib/kubelet/checkpoints'),
  SICKBAY_AGENT_PORT: num(0, 65535).default(8081),
  SICKBAY_AGENT_BIND_ADDRESS: z.string().default(''),
});

/** The settings that depend on each other, checked together. */
const validConfig = configSchema.superRefine((c, ctx) => {
  if (c.SICKBAY_RENEW_DEADLINE >= c.SICKBAY_LEASE_DURATION) {
    ctx.addIssue({ code: 'custom', path: ['SICKBAY_RENEW_DEADLINE'], message: 'must be shorter than SICKBAY_LEASE_DURATION' });
  }
  if (c.SICKBAY_ARCHIVE_ENDPOINT) {
    for (const k of ['SICKBAY_ARCHIVE_BUCKET', 'SICKBAY_ARCHIVE_ACCESS_KEY_ID', 'SICKBAY_ARCHIVE_SECRET_ACCESS_KEY'] as const) {
      if (!c[k]) ctx.addIssue({ code: 'custom', path: [k], message: 'must be set with SICKBAY_ARCHIVE_ENDPOINT' });
    }
  }
  const lockMinutes = c.SICKBAY_NODE_LOCK_DURATION / 60_000;
  if (lockMinutes < 30 || lockMinutes > 60) ctx.addIssue({ code: 'custom', path: ['SICKBAY_NODE_LOCK_DURATION'], message: 'must be between 30m and 60m' });
});

export type RawConfig = z.infer<typeof configSchema>;

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

/** The agent's checkpoints (the agent's CheckpointOptions). */
export interface CheckpointSettings {
  kubeletApi: string;
  kubeletCaFile: string;
  kubeletInsecure: boolean;
  timeoutMs: number;
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
  registries: z.infer<typeof registriesSchema>;
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

export class ConfigError extends Error {}

/** The namespace the CLI's commands look in unless told: SICKBAY_NAMESPACE, as `serve` reads it. */
export function cliNamespace(env: NodeJS.ProcessEnv = process.env): string {
  return env.SICKBAY_NAMESPACE || configSchema.shape.SICKBAY_NAMESPACE.parse(undefined);
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.fromEntries(Object.keys(configSchema.shape).filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]]));
  const parsed = validConfig.safeParse(known);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}=${JSON.stringify(env[String(i.path[0])])}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
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
