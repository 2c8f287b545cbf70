// The public names of ../shared/SPEC.md. Users and tests depend on them: change none.
export const PREFIX = 'sickbay.io';

export const LABEL_INJECTION = `${PREFIX}/injection`; // Namespace: "enabled" opts in
export const LABEL_INJECT = `${PREFIX}/inject`; // Pod: "false" opts out
export const LABEL_STATUS = `${PREFIX}/status`; // Pod: "quarantined", set by the controller only
export const LABEL_ALERTS = `${PREFIX}/alerts`; // Namespace: "enabled" lets alerts posted to /alerts act on its pods
export const STATUS_QUARANTINED = 'quarantined';

export const ANN_ISOLATE = `${PREFIX}/isolate`;
export const ANN_QUARANTINED_AT = `${PREFIX}/quarantined-at`;
export const ANN_REASON = `${PREFIX}/reason`;
export const ANN_OWNER = `${PREFIX}/owner`;
export const ANN_EXPIRES_AT = `${PREFIX}/expires-at`;
export const ANN_ORIGINAL_LABELS = `${PREFIX}/original-labels`;
export const ANN_REGISTRY = `${PREFIX}/registry`;
export const ANN_DIAGNOSTICS = `${PREFIX}/diagnostics`;
export const ANN_INJECTED = `${PREFIX}/injected`;
export const ANN_MAX_QUARANTINED = `${PREFIX}/max-quarantined`;
export const ANN_AVOID_NODES = `${PREFIX}/avoid-nodes`;
/** JSON: where the scene's bundle went before sickbay deleted the pod (key, size), or why it could not. */
export const ANN_ARCHIVE = `${PREFIX}/archive`;

/** `true`/`false` on a Pod (or its Namespace; the pod's wins): a forensic checkpoint of each supervised container at quarantine (SPEC). */
export const ANN_CHECKPOINT = `${PREFIX}/checkpoint`;
/** JSON: where each container's checkpoint went (node, archive path, size, duration), or why there is none (SPEC). */
export const ANN_CHECKPOINT_RESULT = `${PREFIX}/checkpoint-result`;

/** Annotations only sickbay's controller may write or remove on a quarantined pod. */
export const CONTROLLER_ANNOTATIONS = [
  ANN_QUARANTINED_AT,
  ANN_REASON,
  ANN_OWNER,
  ANN_EXPIRES_AT,
  ANN_ORIGINAL_LABELS,
  ANN_REGISTRY,
  ANN_DIAGNOSTICS,
  // A forged "archived" would let the pod go without its archive.
  ANN_ARCHIVE,
  ANN_CHECKPOINT_RESULT,
] as const;

// sickbay's own design (not in SPEC): a person's request to end a quarantine (`sickbay
// release`); the controller archives the scene (when an archive is configured), then deletes the pod.
export const ANN_RELEASE = `${PREFIX}/release`;

// sickbay's own design (not in SPEC): how a pod tunes its injection.
/** JSON array: the image entrypoint of container <name>, so a container without `command` can be wrapped. */
export const annEntrypoint = (container: string) => `${PREFIX}/entrypoint.${container}`;
/** "<port>" or "<port>/<path>": an HTTP readiness probe instead of the supervisor's. */
export const ANN_PROBE_HTTP = `${PREFIX}/probe-http`;
/** A quantity ("1Gi"): the size limit of the pod's /sickbay volume, which holds diagnostics and heap dumps (default 256Mi). */
export const ANN_SHIM_VOLUME_SIZE = `${PREFIX}/shim-volume-size`;

/** `true`/`false` on a Pod (or its Namespace; the pod's wins): JVM pods keep a bounded continuous JFR recording (SPEC). */
export const ANN_FLIGHT_RECORDER = `${PREFIX}/flight-recorder`;
/** Set by the webhook on supervised containers with the recorder on: the JVM options the supervisor appends to JAVA_TOOL_OPTIONS. */
export const ENV_JFR_OPTIONS = 'SICKBAY_JFR_OPTIONS';

/** Namespaces sickbay never injects into nor acts in, whatever their labels say (and its own). */
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-node-lease', 'kube-public'] as const;

export const NODE_TAINT_ISOLATED = `${PREFIX}/isolated`;
export const LABEL_NODE_STATUS = `${PREFIX}/node-status`;

export const SHIM_MOUNT = '/sickbay';
/** The shim's probe script: readiness, the liveness wrapper (`--live`) and the quarantine hold (`--hold`). */
export const SHIM_PROBE = `${SHIM_MOUNT}/bin/probe`;
/** The supervisor: an injected container whose command starts with it is supervised. */
export const SHIM_SUPERVISOR = `${SHIM_MOUNT}/bin/supervise`;
export const SHIM_VOLUME = 'sickbay-shim';
export const SHIM_INIT_CONTAINER = 'sickbay-shim-install';
/** The shim's files straight from its image (a Kubernetes `image` volume), read-only at /sickbay/bin, where the runtime supports it. */
export const SHIM_IMAGE_VOLUME = 'sickbay-shim-bin';
export const SHIM_BIN_MOUNT = `${SHIM_MOUNT}/bin`;
/** The pod's labels (downward API), read by the liveness wrapper: `/sickbay/pod/labels`. */
export const PODINFO_VOLUME = 'sickbay-podinfo';
export const PODINFO_MOUNT = `${SHIM_MOUNT}/pod`;
/** The flight recorder's repository (one folder per JVM, the JVM's own chunk files). */
export const JFR_REPOSITORY = `${SHIM_MOUNT}/jfr`;
