// The one place sickbay reads its configuration. Every setting is an environment
// variable (the Helm chart sets them); the README's configuration table lists them all.
import { z } from 'zod';
import { CHECK_NAMES, type CheckName, parseProcessSpecs, type ProcessSpec } from './node/checks.js';

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

const duration = z.string().transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

export const configSchema = z.object({
  // Server
  SICKBAY_PORT: num(0, 65535).default(8443),
  SICKBAY_BIND_ADDRESS: z.string().default('0.0.0.0'),
  SICKBAY_TLS_CERT: z.string().default('certs/tls.crt'),
  SICKBAY_TLS_KEY: z.string().default('certs/tls.key'),
  SICKBAY_TLS_CA: z.string().default('certs/ca.crt'),
  SICKBAY_CA_BUNDLE_SYNC: bool.default(false),
  SICKBAY_TLS_SECRET: z.string().default(''),
  SICKBAY_TLS_DNS_NAMES: list,
  SICKBAY_TLS_IP_ADDRESSES: list,
  SICKBAY_TLS_VALIDITY_DAYS: num(1, 36500).default(3650),
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
  SICKBAY_QUARANTINE_TTL: duration.prefault('24h'),
  SICKBAY_RESYNC: duration.prefault('5m'),
  SICKBAY_ALERTS_TOKEN: z.string().default(''),
  SICKBAY_ALERTS_RATE_PER_MINUTE: num(1, 100000).default(60),
  SICKBAY_REGISTRIES: z.string().default('[]'),
  SICKBAY_NEVER_READY_AFTER: duration.prefault('3m'),
  SICKBAY_AVOID_NODES_TTL: duration.prefault('1h'),
  SICKBAY_DIAGNOSTICS: bool.default(true),
  SICKBAY_DIAGNOSTICS_TIMEOUT: duration.prefault('2m'),
  SICKBAY_REPAIR_RESTART: bool.default(false),
  // Nodes: the controller
  SICKBAY_NODE_CONTROLLER: bool.default(true),
  SICKBAY_HEARTBEAT_INTERVAL: duration.prefault('10s'),
  SICKBAY_NODE_MISSED_HEARTBEATS: num(1, 100).default(3),
  SICKBAY_NODE_LOCK_DURATION: duration.prefault('45m'),
  SICKBAY_NODE_ISOLATION_BUDGET: z.string().regex(/^\s*\d+(\.\d+)?\s*%?\s*$/, 'a count like 2 or a share like 10%').default('10%'),
  SICKBAY_NODE_MIN_HEALTHY: z.string().regex(/^\s*\d+(\.\d+)?\s*%?\s*$/, 'a share like 51% or 0.51').default('51%'),
  SICKBAY_NODE_MIN_HEALTHY_GROUP_LABEL: z.string().regex(/^([a-z0-9.-]+\/)?[A-Za-z0-9._-]*$/, 'a node label key such as karpenter.sh/nodepool').default(''),
  SICKBAY_NODE_RECOVERY_AFTER: duration.prefault('0'),
  SICKBAY_NODE_DRY_RUN: bool.default(false),
  // Nodes: the agent
  SICKBAY_NODE_NAME: z.string().default(''),
  SICKBAY_AGENT_CHECKS: z.string().default('kubelet,conditions,network,processes'),
  SICKBAY_AGENT_CHECK_INTERVAL: duration.prefault('1s'),
  SICKBAY_AGENT_FAILURE_THRESHOLD: num(1, 100).default(3),
  SICKBAY_AGENT_KUBELET_URL: z.string().url().default('http://127.0.0.1:10248/healthz'),
  SICKBAY_AGENT_NETWORK_TARGETS: z.string().default(''),
  SICKBAY_AGENT_PROCESSES: z.string().default('auto'),
  SICKBAY_AGENT_PROC_ROOT: z.string().default('/proc'),
  SICKBAY_AGENT_NODE_CONDITION: z
    .string()
    .regex(/^([A-Z][A-Za-z0-9]{0,62})?$/, 'a condition type such as SickbayNodeProblem (letters and digits, starting with a capital), or empty')
    .default(''),
  SICKBAY_AGENT_PORT: num(0, 65535).default(8081),
  SICKBAY_AGENT_BIND_ADDRESS: z.string().default(''),
});

/** "51%" or "0.51", between 0 and 1. */
function share(name: string, v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(v)!;
  const n = m[2] ? Number(m[1]) / 100 : Number(m[1]);
  if (!(n >= 0 && n <= 1)) throw new ConfigError(`invalid configuration: ${name}: ${JSON.stringify(v)} is not a share between 0 and 1 (51% or 0.51)`);
  return n;
}

const registriesSchema = z.array(
  z.object({
    name: z.string().min(1),
    connect: z.string().min(1),
    digest: z.string().optional(),
    interfaceRoots: z.array(z.string().startsWith('/')).optional(),
    servicesRoot: z.string().optional(),
  }).strict(),
);

export type RawConfig = z.infer<typeof configSchema>;

export interface Config {
  port: number;
  bindAddress: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  /** Self-managed certificates: keep the webhook configurations' CA bundle equal to this file. */
  caBundleSync: { enabled: boolean; caFile: string; configurationName: string };
  /** Self-managed certificates generated in the cluster: the Secret (in `namespace`) and what goes into it. */
  tlsSecret?: { name: string; dnsNames: string[]; ipAddresses: string[]; validityDays: number };
  drainMs: number;
  maxBodyBytes: number;
  logLevel: RawConfig['SICKBAY_LOG_LEVEL'];
  namespace: string;
  serviceAccount: string;
  /** The username the API server gives sickbay's ServiceAccount. */
  serviceAccountUsername: string;
  podName: string;
  shimImage: string;
  /** Secrets (in each pod's namespace) the kubelet uses to pull the shim image; added to injected pods. */
  shimPullSecrets: string[];
  shimSource: string;
  controllers: boolean;
  leaderElection: { enabled: boolean; leaseName: string; leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  dryRun: boolean;
  notReadyGraceMs: number;
  maxQuarantined: number;
  systemicFailureRatio: number;
  quarantineRatePerMinute: number;
  /** After this many quarantines and deletions of one workload within backoffWindowMs, sickbay stops acting on it. */
  backoffAfter: number;
  backoffWindowMs: number;
  quarantineTtlMs: number;
  resyncMs: number;
  alertsToken: string;
  /** POST /alerts requests a minute (429 beyond). */
  alertsRatePerMinute: number;
  registries: z.infer<typeof registriesSchema>;
  neverReadyAfterMs: number;
  avoidNodesTtlMs: number;
  diagnostics: { enabled: boolean; timeoutMs: number };
  /** Restart Deployments whose pods escaped injection (they are reported either way). */
  repairRestart: boolean;
  node: {
    controller: boolean;
    heartbeatIntervalMs: number;
    missedHeartbeats: number;
    lockDurationMs: number;
    isolationBudget: string;
    /** 0-1: below this share of healthy nodes, isolate nothing. */
    minHealthy: number;
    /** A node label (a node pool's): minHealthy also holds within each group of nodes sharing its value. Empty: the whole cluster only. */
    minHealthyGroupLabel: string;
    recoveryAfterMs: number;
    dryRun: boolean;
  };
  agent: {
    nodeName: string;
    checks: CheckName[];
    checkIntervalMs: number;
    failureThreshold: number;
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
  };
}

export class ConfigError extends Error {}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.fromEntries(Object.keys(configSchema.shape).filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]]));
  const parsed = configSchema.safeParse(known);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}=${JSON.stringify(env[String(i.path[0])])}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  if (c.SICKBAY_RENEW_DEADLINE >= c.SICKBAY_LEASE_DURATION) {
    throw new ConfigError('invalid configuration: SICKBAY_RENEW_DEADLINE must be shorter than SICKBAY_LEASE_DURATION');
  }
  const lockMinutes = c.SICKBAY_NODE_LOCK_DURATION / 60;
  if (lockMinutes < 30 || lockMinutes > 60) {
    throw new ConfigError(`invalid configuration: SICKBAY_NODE_LOCK_DURATION must be between 30m and 60m (got ${JSON.stringify(env.SICKBAY_NODE_LOCK_DURATION)})`);
  }
  const checks = c.SICKBAY_AGENT_CHECKS.split(',').map((s) => s.trim()).filter(Boolean);
  const unknownCheck = checks.find((x) => !(CHECK_NAMES as readonly string[]).includes(x));
  if (unknownCheck) throw new ConfigError(`invalid configuration: SICKBAY_AGENT_CHECKS: unknown check ${JSON.stringify(unknownCheck)} (known: ${CHECK_NAMES.join(', ')})`);
  let processes: ProcessSpec[] | 'auto';
  try {
    processes = c.SICKBAY_AGENT_PROCESSES.trim() === 'auto' ? 'auto' : parseProcessSpecs(c.SICKBAY_AGENT_PROCESSES);
  } catch (err) {
    throw new ConfigError(`invalid configuration: SICKBAY_AGENT_PROCESSES: ${(err as Error).message}`);
  }
  const targets = c.SICKBAY_AGENT_NETWORK_TARGETS.split(',').map((s) => s.trim()).filter(Boolean);
  const badTarget = targets.find((t) => !/^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/.test(t));
  if (badTarget) throw new ConfigError(`invalid configuration: SICKBAY_AGENT_NETWORK_TARGETS: ${JSON.stringify(badTarget)} is not host:port`);
  let registries: z.infer<typeof registriesSchema>;
  try {
    registries = registriesSchema.parse(JSON.parse(c.SICKBAY_REGISTRIES));
  } catch (err) {
    const why = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : (err as Error).message;
    throw new ConfigError(`invalid configuration:\n  SICKBAY_REGISTRIES: ${why} (expected a JSON array of {name, connect, digest?, interfaceRoots?, servicesRoot?})`);
  }
  return {
    port: c.SICKBAY_PORT,
    bindAddress: c.SICKBAY_BIND_ADDRESS,
    tlsCertFile: c.SICKBAY_TLS_CERT,
    tlsKeyFile: c.SICKBAY_TLS_KEY,
    caBundleSync: { enabled: c.SICKBAY_CA_BUNDLE_SYNC, caFile: c.SICKBAY_TLS_CA, configurationName: c.SICKBAY_WEBHOOK_CONFIGURATION },
    tlsSecret: c.SICKBAY_TLS_SECRET
      ? { name: c.SICKBAY_TLS_SECRET, dnsNames: c.SICKBAY_TLS_DNS_NAMES, ipAddresses: c.SICKBAY_TLS_IP_ADDRESSES, validityDays: c.SICKBAY_TLS_VALIDITY_DAYS }
      : undefined,
    drainMs: c.SICKBAY_DRAIN * 1000,
    maxBodyBytes: c.SICKBAY_MAX_BODY_BYTES,
    logLevel: c.SICKBAY_LOG_LEVEL,
    namespace: c.SICKBAY_NAMESPACE,
    serviceAccount: c.SICKBAY_SERVICE_ACCOUNT,
    serviceAccountUsername: `system:serviceaccount:${c.SICKBAY_NAMESPACE}:${c.SICKBAY_SERVICE_ACCOUNT}`,
    podName: c.SICKBAY_POD_NAME,
    shimImage: c.SICKBAY_SHIM_IMAGE,
    shimPullSecrets: c.SICKBAY_SHIM_PULL_SECRETS,
    shimSource: c.SICKBAY_SHIM_SOURCE,
    controllers: c.SICKBAY_CONTROLLERS,
    leaderElection: {
      enabled: c.SICKBAY_LEADER_ELECTION,
      leaseName: c.SICKBAY_LEASE_NAME,
      leaseDurationMs: c.SICKBAY_LEASE_DURATION * 1000,
      renewDeadlineMs: c.SICKBAY_RENEW_DEADLINE * 1000,
      retryPeriodMs: c.SICKBAY_RETRY_PERIOD * 1000,
    },
    dryRun: c.SICKBAY_DRY_RUN,
    notReadyGraceMs: c.SICKBAY_NOT_READY_GRACE * 1000,
    maxQuarantined: c.SICKBAY_MAX_QUARANTINED,
    systemicFailureRatio: c.SICKBAY_SYSTEMIC_FAILURE_RATIO,
    quarantineRatePerMinute: c.SICKBAY_QUARANTINE_RATE_PER_MINUTE,
    backoffAfter: c.SICKBAY_BACKOFF_AFTER,
    backoffWindowMs: c.SICKBAY_BACKOFF_WINDOW * 1000,
    quarantineTtlMs: c.SICKBAY_QUARANTINE_TTL * 1000,
    resyncMs: c.SICKBAY_RESYNC * 1000,
    alertsToken: c.SICKBAY_ALERTS_TOKEN,
    alertsRatePerMinute: c.SICKBAY_ALERTS_RATE_PER_MINUTE,
    registries,
    neverReadyAfterMs: c.SICKBAY_NEVER_READY_AFTER * 1000,
    avoidNodesTtlMs: c.SICKBAY_AVOID_NODES_TTL * 1000,
    diagnostics: { enabled: c.SICKBAY_DIAGNOSTICS, timeoutMs: c.SICKBAY_DIAGNOSTICS_TIMEOUT * 1000 },
    repairRestart: c.SICKBAY_REPAIR_RESTART,
    node: {
      controller: c.SICKBAY_NODE_CONTROLLER,
      heartbeatIntervalMs: c.SICKBAY_HEARTBEAT_INTERVAL * 1000,
      missedHeartbeats: c.SICKBAY_NODE_MISSED_HEARTBEATS,
      lockDurationMs: c.SICKBAY_NODE_LOCK_DURATION * 1000,
      isolationBudget: c.SICKBAY_NODE_ISOLATION_BUDGET.trim(),
      minHealthy: share('SICKBAY_NODE_MIN_HEALTHY', c.SICKBAY_NODE_MIN_HEALTHY),
      minHealthyGroupLabel: c.SICKBAY_NODE_MIN_HEALTHY_GROUP_LABEL,
      recoveryAfterMs: c.SICKBAY_NODE_RECOVERY_AFTER * 1000,
      dryRun: c.SICKBAY_NODE_DRY_RUN || c.SICKBAY_DRY_RUN,
    },
    agent: {
      nodeName: c.SICKBAY_NODE_NAME,
      checks: checks as CheckName[],
      checkIntervalMs: c.SICKBAY_AGENT_CHECK_INTERVAL * 1000,
      failureThreshold: c.SICKBAY_AGENT_FAILURE_THRESHOLD,
      kubeletUrl: c.SICKBAY_AGENT_KUBELET_URL,
      networkTargets: targets,
      processes,
      procRoot: c.SICKBAY_AGENT_PROC_ROOT,
      nodeCondition: c.SICKBAY_AGENT_NODE_CONDITION || undefined,
      port: c.SICKBAY_AGENT_PORT,
      bindAddress: c.SICKBAY_AGENT_BIND_ADDRESS,
    },
  };
}
