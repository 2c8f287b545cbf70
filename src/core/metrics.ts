// Prometheus metrics. One Metrics per process (tests make their own), on its own registry.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BUILD_INFO } from './agent-metrics.js';
import { VERSION } from './version.js';

/** From a failure seen to sickbay's action on it (pods, nodes). */
const REACTION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];
/** A controller's key: waiting for a worker, or being reconciled. */
const RECONCILE_BUCKETS = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];

export class Metrics {
  readonly registry = new Registry();

  readonly buildInfo = buildInfo(this.registry);

  readonly admissionRequests = new Counter({
    name: 'sickbay_admission_requests_total',
    help: 'Admission requests by webhook and outcome (patched, allowed, denied, http_<status>, error).',
    labelNames: ['webhook', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly admissionDuration = new Histogram({
    name: 'sickbay_admission_duration_seconds',
    help: 'Time to answer an admission request.',
    labelNames: ['webhook'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly certReloads = new Counter({
    name: 'sickbay_tls_reloads_total',
    help: 'Serving certificate reloads by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly connectionsDropped = new Counter({
    name: 'sickbay_connections_dropped_total',
    help: 'Connections refused because the server holds its maximum already.',
    registers: [this.registry],
  });
  readonly idleConnectionsClosed = new Counter({
    name: 'sickbay_idle_connection_evictions_total',
    help: 'Times the HTTPS server neared its connection cap and closed its idle keep-alive connections to make room.',
    registers: [this.registry],
  });
  readonly tlsHandshakes = new Counter({
    name: 'sickbay_tls_handshakes_total',
    help: 'TLS connections accepted on the HTTPS port, by whether the session was resumed (a full handshake costs a signature with the serving key).',
    labelNames: ['resumed'] as const,
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({ name: 'sickbay_leader', help: '1 while this replica holds the controller lease.', registers: [this.registry] });
  readonly failedTerms = new Counter({
    name: 'sickbay_leader_failed_terms_total',
    help: 'Leadership terms ended because leader work stopped (a controller threw or returned): the Lease was resigned, and this replica waits out a backoff before it campaigns again.',
    labelNames: ['runnable'] as const,
    registers: [this.registry],
  });
  readonly quarantines = new Counter({
    name: 'sickbay_quarantines_total',
    help: 'Pods quarantined, by trigger (not-ready, annotation, alert).',
    labelNames: ['trigger'] as const,
    registers: [this.registry],
  });
  readonly podDeletions = new Counter({
    name: 'sickbay_pod_deletions_total',
    help: 'Pods deleted by sickbay, by reason (over-quota, expired, never-ready).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly archives = new Counter({
    name: 'sickbay_archives_total',
    help: "Scene bundles written to the archive before a deletion, by result (ok; failed: retried, the deletion held back; deleted-without: the pod went without one, its hold-back bound passed or an eviction's wait).",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly archiveBytes = new Counter({
    name: 'sickbay_archive_bytes_total',
    help: 'Compressed bytes of scene bundles written to the archive.',
    registers: [this.registry],
  });
  readonly replacementsRefused = new Counter({
    name: 'sickbay_replacements_refused_total',
    help: "Times a quarantined pod's ReplicaSet could not create its replacement (a ResourceQuota, a LimitRange, a webhook): the workload is short.",
    registers: [this.registry],
  });
  readonly skips = new Counter({
    name: 'sickbay_quarantine_skips_total',
    help: 'Failing pods left alone, by reason (systemic, rate-limited, unsupported-owner, dry-run, disruption-budget, image-pull, shim-image-pull, node-away, alert-bare-pod).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly timeToQuarantine = new Histogram({
    name: 'sickbay_time_to_quarantine_seconds',
    help: 'From the moment sickbay could act on a failing pod (its watch saw it NotReady and the grace period was over) or saw the request, to quarantined.',
    buckets: REACTION_BUCKETS,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'sickbay_workqueue_depth', help: 'Keys waiting in a controller queue.', labelNames: ['queue'] as const, registers: [this.registry] });
  readonly queueWait = new Histogram({
    name: 'sickbay_workqueue_wait_seconds',
    help: 'How long a key waited in a controller queue for a free worker.',
    labelNames: ['queue'] as const,
    buckets: RECONCILE_BUCKETS,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'sickbay_reconcile_duration_seconds',
    help: 'How long one reconcile took, its API calls included.',
    labelNames: ['controller'] as const,
    buckets: RECONCILE_BUCKETS,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'sickbay_reconcile_errors_total',
    help: 'Reconciles that failed and were retried.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly informerRestarts = new Counter({
    name: 'sickbay_informer_restarts_total',
    help: 'Watches restarted after an error or silence.',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });

  readonly registryRemovals = new Counter({
    name: 'sickbay_registry_removals_total',
    help: 'Registry entries of quarantined pods removed, initial or re-registration.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly registrySessionExpiries = new Counter({
    name: 'sickbay_registry_session_expiries_total',
    help: 'ZooKeeper sessions of a registry that expired (unreachable past the session timeout); the watches are re-armed on a new session.',
    labelNames: ['registry'] as const,
    registers: [this.registry],
  });
  readonly registryErrors = new Counter({ name: 'sickbay_registry_errors_total', help: 'Failed attempts to reach a service registry.', registers: [this.registry] });
  readonly diagnostics = new Counter({
    name: 'sickbay_diagnostics_total',
    help: 'Diagnostics runs in quarantined pods by result (ok, skipped, failed, timeout).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly checkpoints = new Counter({
    name: 'sickbay_checkpoints_total',
    help: 'Checkpoints of quarantined pods asked of node agents, by result (taken, failed, timeout, no-agent).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly checkpointSeconds = new Histogram({
    name: 'sickbay_checkpoint_duration_seconds',
    help: "How long a container's checkpoint took on its node (the kubelet's call, the app paused for part of it).",
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  readonly avoidRecords = new Counter({
    name: 'sickbay_avoid_nodes_total',
    help: 'Changes to Deployments\' avoid-node records (recorded, expired, cleared).',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });

  readonly nodes = new Gauge({
    name: 'sickbay_nodes',
    help: 'Nodes by what the node controller sees (reporting, late, stale, unhealthy, isolated, maintenance: cordoned or being removed, left to others; agent-down: the agent is silent but nothing says the node is at fault).',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly nodeIsolations = new Counter({
    name: 'sickbay_node_isolations_total',
    help: 'Nodes isolated, by cause (heartbeat, checks) and result (isolated, dry-run).',
    labelNames: ['cause', 'result'] as const,
    registers: [this.registry],
  });
  readonly nodeIsolationSkips = new Counter({
    name: 'sickbay_node_isolation_skips_total',
    help: 'Faulty nodes left alone, by guard (protected, budget, stale-majority, too-few-healthy, too-few-healthy-in-group).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly nodeHealthsRemoved = new Counter({
    name: 'sickbay_nodehealths_removed_total',
    help: 'NodeHealths removed because no agent pod has run on their node for SICKBAY_NODE_HEALTH_CLEANUP_AFTER (the DaemonSet no longer covers it).',
    registers: [this.registry],
  });
  readonly nodeRestores = new Counter({
    name: 'sickbay_node_restores_total',
    help: 'Isolations the controller lifted itself, by why (recovery). `sickbay node restore` leaves an Event instead.',
    labelNames: ['by'] as const,
    registers: [this.registry],
  });
  readonly timeToIsolate = new Histogram({
    name: 'sickbay_node_time_to_isolate_seconds',
    help: 'From a missed heartbeat deadline, or an unhealthy report seen, to the taint.',
    buckets: REACTION_BUCKETS,
    registers: [this.registry],
  });

  readonly caBundleSyncs = new Counter({
    name: 'sickbay_ca_bundle_syncs_total',
    help: "Webhook configurations whose CA bundle was brought in line with the serving Secret's CA.",
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly shimDelivery = new Gauge({
    name: 'sickbay_shim_delivery',
    help: 'How injected pods get the shim now: 1 for the delivery in use (image-volume or init-container), 0 for the other.',
    labelNames: ['delivery'] as const,
    registers: [this.registry],
  });
  readonly uninjectedPods = new Gauge({ name: 'sickbay_uninjected_pods', help: 'Pods in opted-in namespaces that escaped injection.', registers: [this.registry] });
  readonly unsupervisedContainers = new Gauge({
    name: 'sickbay_unsupervised_containers',
    help: 'Containers of injected pods that run without the supervisor (no command, no entrypoint annotation): their crash scene is lost on restart.',
    registers: [this.registry],
  });
  readonly repairRestarts = new Counter({
    name: 'sickbay_repair_restarts_total',
    help: 'Deployments restarted so their escaped pods are replaced by injected ones, by result (restarted, dry-run).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  /** Where sickbay_events_total reads its counts: the process's Event gate, once `serve` has made it. */
  private eventCounts: () => { written: number; failed: number; dropped: number } = () => ({ written: 0, failed: 0, dropped: 0 });

  readonly events = new Counter({
    name: 'sickbay_events_total',
    help: 'Kubernetes Events this process recorded, by result (written, failed, dropped: too many were waiting).',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      const c = this.eventCounts();
      this.events.reset();
      this.events.inc({ result: 'written' }, c.written);
      this.events.inc({ result: 'failed' }, c.failed);
      this.events.inc({ result: 'dropped' }, c.dropped);
    },
  });

  readonly certificateExpiry = new Gauge({
    name: 'sickbay_certificate_expiry_timestamp_seconds',
    help: 'When the serving certificate, and the CA that signs it (the first of the CA file), end (Unix seconds); read from the files at each scrape.',
    labelNames: ['certificate'] as const,
    registers: [this.registry],
    collect: () => {
      this.certificateExpiry.reset();
      for (const [certificate, file] of Object.entries(this.certificateFiles)) {
        const end = firstCertificateEnd(file);
        if (end !== undefined) this.certificateExpiry.set({ certificate }, end / 1000);
      }
    },
  });
  private certificateFiles: Record<string, string> = {};

  /** The files the expiry gauge reads: the serving certificate and the CA file, when there is one. */
  watchCertificates(files: { serving: string; ca?: string }) {
    this.certificateFiles = { serving: files.serving, ...(files.ca ? { ca: files.ca } : {}) };
  }

  countEvents(source: () => { written: number; failed: number; dropped: number }) {
    this.eventCounts = source;
  }

  constructor({ defaults = false }: { defaults?: boolean } = {}) {
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }

  admission(webhook: string, outcome: string, seconds: number) {
    this.admissionRequests.inc({ webhook, outcome });
    this.admissionDuration.observe({ webhook }, seconds);
  }
}

/** When the first certificate of a PEM file ends (ms), or undefined when there is none to read. */
function firstCertificateEnd(file: string): number | undefined {
  try {
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(readFileSync(file, 'utf8'))?.[0];
    return pem ? Date.parse(new X509Certificate(pem).validTo) : undefined;
  } catch {
    return undefined;
  }
}

/** `sickbay_build_info{version, nodejs}` 1: which build a replica or an agent runs (alerts join on it, dashboards show it). */
function buildInfo(registry: Registry) {
  const g = new Gauge({ name: BUILD_INFO.name, help: BUILD_INFO.help, labelNames: BUILD_INFO.labelNames, registers: [registry] });
  g.set({ version: VERSION, nodejs: process.versions.node }, 1);
  return g;
}
