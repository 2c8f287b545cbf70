// The configuration table: for every environment variable sickbay reads, its default as
// written for people and what it does. docs/reference/configuration.md is generated
// from it (`npm run docs`); tests/unit/docs.test.ts checks that the page matches,
// that every variable of the schema (config.ts) is here exactly once, and that each
// default written here is the schema's own.
export interface ConfigDoc {
  /** Variables documented together (a certificate and its key). */
  vars: string[];
  /** Markdown: each variable's default in backticks (in the order of `vars`), or (none). */
  default: string;
  /** Markdown. */
  meaning: string;
}

export const CONFIG_DOCS: readonly ConfigDoc[] = [
  { vars: ["SICKBAY_PORT"], default: "`8443`", meaning: "HTTPS port for `/mutate`, `/validate`, `/alerts`, `/healthz`, `/readyz`, `/metrics`" },
  { vars: ["SICKBAY_BIND_ADDRESS"], default: "`0.0.0.0`", meaning: "address to listen on" },
  { vars: ["SICKBAY_HEALTH_PORT"], default: "`0`", meaning: "a plain-HTTP port on the same address serving `/healthz` and `/readyz` alone, so the kubelet's probes never wait behind HTTPS load or its connection cap (the chart sets 8081); `0`: none" },
  { vars: ["SICKBAY_TLS_CERT", "SICKBAY_TLS_KEY"], default: "`certs/tls.crt`, `certs/tls.key`", meaning: "serving certificate; reloaded when the files change (TLS 1.2+)" },
  { vars: ["SICKBAY_CA_BUNDLE_SYNC"], default: "`false`", meaning: "keep the webhook configurations' CA bundle equal to `SICKBAY_TLS_CA` (self-managed certificates)" },
  { vars: ["SICKBAY_TLS_CA"], default: "`certs/ca.crt`", meaning: "the CA that signed the serving certificate" },
  { vars: ["SICKBAY_TLS_SECRET"], default: "(none)", meaning: "self-managed certificates made in the cluster: a Secret in `SICKBAY_NAMESPACE` that sickbay creates when missing (a CA and a serving certificate), renews in the last third of the certificate's life (at most 30 days before it ends), and writes to the three files above; replicas starting together make one" },
  { vars: ["SICKBAY_TLS_DNS_NAMES", "SICKBAY_TLS_IP_ADDRESSES"], default: "(none)", meaning: "with `SICKBAY_TLS_SECRET`: the names and addresses of the serving certificate (comma-separated)" },
  { vars: ["SICKBAY_TLS_VALIDITY_DAYS"], default: "`3650`", meaning: "with `SICKBAY_TLS_SECRET`: the lifetime of the CA and of each serving certificate" },
  { vars: ["SICKBAY_WEBHOOK_CONFIGURATION"], default: "`sickbay`", meaning: "name of the two webhook configurations kept in sync" },
  { vars: ["SICKBAY_DRAIN"], default: "`5s`", meaning: "on SIGTERM: readiness fails, the server keeps serving this long, then closes" },
  { vars: ["SICKBAY_MAX_BODY_BYTES"], default: "`3145728`", meaning: "larger admission or alert bodies get HTTP 413; admission bodies of four times this in all are reviewed at once, beyond that HTTP 429" },
  { vars: ["SICKBAY_LOG_LEVEL"], default: "`info`", meaning: "`error`, `warn`, `info`, `debug` (JSON logs)" },
  { vars: ["SICKBAY_NAMESPACE"], default: "`sickbay-system`", meaning: "sickbay's namespace (its Lease lives there; never injected)" },
  { vars: ["SICKBAY_SERVICE_ACCOUNT"], default: "`sickbay`", meaning: "its ServiceAccount: the identity the relabel guard lets through" },
  { vars: ["SICKBAY_POD_NAME"], default: "host name + random", meaning: "identity in the leader Lease" },
  { vars: ["SICKBAY_SHIM_IMAGE"], default: "`ghcr.io/sickbay-dev/sickbay-shim:0.1.0`", meaning: "image carrying the shim, mounted as an image volume or run as the init container (the Dockerfile's `shim` target, ~2 MB)" },
  { vars: ["SICKBAY_SHIM_PULL_SECRETS"], default: "(none)", meaning: "comma-separated Secret names added to injected pods' `imagePullSecrets` to pull that image (each must exist in the pod's namespace)" },
  { vars: ["SICKBAY_SHIM_SOURCE"], default: "`/opt/sickbay/shim`", meaning: "where that image carries the shim" },
  { vars: ["SICKBAY_SHIM_DELIVERY"], default: "`auto`", meaning: "how injected pods get the shim: `image-volume` mounts it read-only from the shim image (no init container: a faster start), `init-container` copies it; `auto` uses the image volume while every node runs a kubelet of 1.35 or later and containerd 2.1 or later, the init container otherwise (docs/concepts.md)" },
  { vars: ["SICKBAY_CONTROLLERS"], default: "`true`", meaning: "run the controllers (`false`: webhook only)" },
  { vars: ["SICKBAY_LEADER_ELECTION"], default: "`true`", meaning: "elect a leader on a Lease; only it runs controllers" },
  { vars: ["SICKBAY_LEASE_NAME"], default: "`sickbay-controller`", meaning: "the Lease" },
  { vars: ["SICKBAY_LEASE_DURATION", "SICKBAY_RENEW_DEADLINE", "SICKBAY_RETRY_PERIOD"], default: "`15s`, `10s`, `2s`", meaning: "leader election timing" },
  { vars: ["SICKBAY_DRY_RUN"], default: "`false`", meaning: "audit mode: change no pod, node or workload; inject nothing; log and write only `Would*` Events" },
  { vars: ["SICKBAY_NOT_READY_GRACE"], default: "`10s`", meaning: "how long a pod that was Ready may be NotReady before quarantine" },
  { vars: ["SICKBAY_MAX_QUARANTINED"], default: "`1`", meaning: "quarantined pods kept per workload (Deployment annotation `sickbay.io/max-quarantined` overrides)" },
  { vars: ["SICKBAY_SYSTEMIC_FAILURE_RATIO"], default: "`0.5`", meaning: "above this share of a workload failing together, do nothing" },
  { vars: ["SICKBAY_QUARANTINE_RATE_PER_MINUTE"], default: "`30`", meaning: "cluster-wide quarantine rate limit" },
  { vars: ["SICKBAY_BACKOFF_AFTER"], default: "`5`", meaning: "per workload: after this many quarantines and deletions within the window, stop acting on it" },
  { vars: ["SICKBAY_BACKOFF_WINDOW"], default: "`15m`", meaning: "the window of `SICKBAY_BACKOFF_AFTER`" },
  { vars: ["SICKBAY_QUARANTINE_TTL"], default: "`24h`", meaning: "a quarantined pod is deleted this long after its quarantine, and its scene (the dumps in its `/sickbay` volume) with it; `never` (or `0`) keeps it until `sickbay release` or a person deletes it (`sickbay.io/expires-at: never`)" },
  { vars: ["SICKBAY_RESYNC"], default: "`5m`", meaning: "informers replay their cache this often" },
  { vars: ["SICKBAY_ALERTS_TOKEN"], default: "(empty: `/alerts` disabled)", meaning: "bearer token Alertmanager must send" },
  { vars: ["SICKBAY_ALERTS_RATE_PER_MINUTE"], default: "`60`", meaning: "`POST /alerts` requests a minute per replica; beyond, 429 with `Retry-After`" },
  { vars: ["SICKBAY_NEVER_READY_AFTER"], default: "`3m`", meaning: "a pod never Ready for this long (from creation) is deleted and its node avoided" },
  { vars: ["SICKBAY_AVOID_NODES_TTL"], default: "`1h`", meaning: "how long a node stays in a Deployment's avoid-list" },
  { vars: ["SICKBAY_REGISTRIES"], default: "`[]`", meaning: "JSON array of ZooKeeper registries: `{\"name\", \"connect\": \"host:port,...[/chroot]\", \"digest\"?: \"user:pass\", \"interfaceRoots\"?: [\"/dubbo\"], \"servicesRoot\"?: \"/services\"}`" },
  { vars: ["SICKBAY_DIAGNOSTICS"], default: "`true`", meaning: "run the diagnostics script in quarantined pods" },
  { vars: ["SICKBAY_DIAGNOSTICS_TIMEOUT"], default: "`2m`", meaning: "the script is cut off after this" },
  { vars: ["SICKBAY_CHECKPOINT_TIMEOUT"], default: "`3m`", meaning: "a quarantined pod with `sickbay.io/checkpoint: \"true\"` (or its namespace) has its supervised containers checkpointed by its node's agent before the dump scripts run; they wait this long for the agent's answer, then run anyway (the checkpoint is then recorded as timed out)" },
  { vars: ["SICKBAY_ARCHIVE_ENDPOINT"], default: "(none)", meaning: "the scene archive: an S3-compatible object store (`https://host[:port]`, path-style); set, sickbay writes each scene's bundle (what `sickbay collect` writes) there before it deletes a quarantined pod (its TTL, a release) or a failing one beyond the quota; unset, no archive" },
  { vars: ["SICKBAY_ARCHIVE_BUCKET"], default: "(none)", meaning: "with an endpoint: the bucket (it must exist)" },
  { vars: ["SICKBAY_ARCHIVE_PREFIX"], default: "`sickbay/`", meaning: "keys are `<prefix><namespace>/<kind>-<workload>/<pod>_<time>.tar.gz`" },
  { vars: ["SICKBAY_ARCHIVE_REGION"], default: "`us-east-1`", meaning: "the region requests are signed for (AWS Signature Version 4)" },
  { vars: ["SICKBAY_ARCHIVE_ACCESS_KEY_ID", "SICKBAY_ARCHIVE_SECRET_ACCESS_KEY"], default: "(none)", meaning: "with an endpoint: the credentials (the chart takes them from a Secret)" },
  { vars: ["SICKBAY_ARCHIVE_CA_FILE"], default: "(none)", meaning: "a PEM CA to trust for the endpoint, besides the system's" },
  { vars: ["SICKBAY_ARCHIVE_MAX_SIZE"], default: "`1Gi`", meaning: "a bundle's content at most (streamed in 8 MiB parts; what does not fit is listed in its `MANIFEST` as left out)" },
  { vars: ["SICKBAY_ARCHIVE_MAX_DELAY"], default: "`1h`", meaning: "a failing archive holds back a quarantined pod's deletion (retried with back-off, Event `ArchiveFailed`) at most this long past its due time; then the pod is deleted with a Warning Event `DeletedWithoutArchive`" },
  { vars: ["SICKBAY_ARCHIVE_OVER_QUOTA_KEEP"], default: "`30s`", meaning: "with an archive, a failing pod beyond its workload's quota is not evicted at once: it is taken out of service as a quarantine (its replacement starts at once), dumped, kept this long, then archived and deleted (Events `KeptForArchive`, then `FailingPodDeleted`)" },
  { vars: ["SICKBAY_REPAIR_RESTART"], default: "`false`", meaning: "restart Deployments whose pods escaped injection, once the webhook works" },
  { vars: ["SICKBAY_NODE_CONTROLLER"], default: "`true`", meaning: "run the node controller (leader only)" },
  { vars: ["SICKBAY_HEARTBEAT_INTERVAL"], default: "`10s`", meaning: "agent: heartbeat interval; controller: the interval assumed when a NodeHealth does not say" },
  { vars: ["SICKBAY_NODE_MISSED_HEARTBEATS"], default: "`3`", meaning: "a heartbeat older than this many intervals makes the node faulty" },
  { vars: ["SICKBAY_NODE_LOCK_DURATION"], default: "`45m`", meaning: "protection lock taken at isolation (30m-60m)" },
  { vars: ["SICKBAY_NODE_ISOLATION_BUDGET"], default: "`10%`", meaning: "most nodes isolated at once: a share of the nodes (rounded down) or a count; at least 1" },
  { vars: ["SICKBAY_NODE_MIN_HEALTHY"], default: "`51%`", meaning: "isolate nothing while fewer than this share of the reporting nodes (not in maintenance) are healthy; `0` turns it off" },
  { vars: ["SICKBAY_NODE_MIN_HEALTHY_GROUP_LABEL"], default: "(none)", meaning: "a node label such as `karpenter.sh/nodepool` or `cloud.google.com/gke-nodepool`: the same share must also hold within each group of nodes sharing its value (as a Node Healthcheck per node selector); a pool under it keeps its nodes (Event `IsolationHeld`) while other pools are isolated as usual" },
  { vars: ["SICKBAY_NODE_RECOVERY_AFTER"], default: "`45m`", meaning: "restore an isolated node (taint and label removed, an Event `NodeRestored`) once its agent has reported it healthy for this long; `0`: only `sickbay node restore` does. The default equals the protection lock, so a node that fails again after its restore can be isolated again" },
  { vars: ["SICKBAY_NODE_HEALTH_CLEANUP_AFTER"], default: "`10m`", meaning: "remove the NodeHealth of a node whose heartbeat is stale and on which no agent pod has run for this long (the agent DaemonSet no longer covers it: a changed `agent.nodeSelector`), with an Event `NodeHealthRemoved`; the node is then not judged until an agent reports again; `0`: never" },
  { vars: ["SICKBAY_NODE_DRY_RUN"], default: "`false`", meaning: "node controller: Events only, no lock, taint or label" },
  { vars: ["SICKBAY_NODE_NAME"], default: "(none)", meaning: "agent: the node, if `--node-name` is not given" },
  { vars: ["SICKBAY_AGENT_CHECKS"], default: "`kubelet,conditions,network,processes`", meaning: "agent: which checks run" },
  { vars: ["SICKBAY_AGENT_CHECK_INTERVAL"], default: "`1s`", meaning: "agent: how often the checks run" },
  { vars: ["SICKBAY_AGENT_FAILURE_THRESHOLD"], default: "`3`", meaning: "agent: failures in a row before a check fails" },
  { vars: ["SICKBAY_AGENT_PRESSURE_AFTER"], default: "`0`", meaning: "agent: a MemoryPressure, DiskPressure or PIDPressure condition fails the `conditions` check only once it has lasted this long (`0`: never). Pressure is the kubelet's to remedy by evicting the pod that causes it, and any tenant can cause it" },
  { vars: ["SICKBAY_AGENT_KUBELET_URL"], default: "`http://127.0.0.1:10248/healthz`", meaning: "agent: kubelet health endpoint" },
  { vars: ["SICKBAY_AGENT_NETWORK_TARGETS"], default: "(the API server)", meaning: "agent: comma-separated `host:port` that must accept a TCP connection" },
  { vars: ["SICKBAY_AGENT_PROCESSES"], default: "`auto`", meaning: "agent: processes that must run and not be zombies. `auto`: those of the node's runtime, from its Node (`status.nodeInfo`; see \"Node agent\"); or a list (`a\\|b`: either; `@pod`: may run in a container's PID namespace, else only the host's counts; `?`: once seen)" },
  { vars: ["SICKBAY_AGENT_NODE_CONDITION"], default: "(none)", meaning: "agent: a Node condition type of its own to write on its node (`True` while a check fails, as Node Problem Detector does), e.g. `SickbayNodeProblem`; the chart's `agent.nodeCondition` also grants `nodes/status` and guards it" },
  { vars: ["SICKBAY_AGENT_PROC_ROOT"], default: "`/proc`", meaning: "agent: where to read processes (the host's `/proc` mounted in the container)" },
  { vars: ["SICKBAY_AGENT_KUBELET_API"], default: "(none: checkpoints off)", meaning: "agent: its kubelet's API, `https://<node address>:10250`, for checkpoints (`POST /checkpoint/...`, the ContainerCheckpoint API; the agent needs `create` on `nodes/checkpoint`: the chart's `agent.checkpoints.enabled` sets both); unset, the agent answers each checkpoint request with why it cannot take it" },
  { vars: ["SICKBAY_AGENT_KUBELET_CA"], default: "(the API server's CA)", meaning: "agent: a PEM CA for the kubelet's serving certificate" },
  { vars: ["SICKBAY_AGENT_KUBELET_INSECURE"], default: "`false`", meaning: "agent: do not verify the kubelet's serving certificate (self-signed kubelet certificates; as metrics-server's `--kubelet-insecure-tls`)" },
  { vars: ["SICKBAY_AGENT_CHECKPOINT_TIMEOUT"], default: "`2m`", meaning: "agent: how long the kubelet may take over one checkpoint" },
  { vars: ["SICKBAY_AGENT_CHECKPOINT_DIR"], default: "`/var/lib/kubelet/checkpoints`", meaning: "agent: the kubelet's checkpoints folder, mounted at the same path; archives are measured there and removed from there (and from nowhere else) once their scene is gone" },
  { vars: ["SICKBAY_AGENT_PORT"], default: "`8081`", meaning: "agent: plain HTTP `/healthz` and `/metrics` (0: off)" },
  { vars: ["SICKBAY_AGENT_BIND_ADDRESS"], default: "(empty: every interface; the chart sets the node's own address)", meaning: "agent: the address `/healthz` and `/metrics` listen on (`127.0.0.1`: the node alone)" },
];

/** The configuration reference's table. */
export function configTable(): string {
  const rows = CONFIG_DOCS.map((d) => `| ${d.vars.map((v) => `\`${v}\``).join(', ')} | ${d.default} | ${d.meaning} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
