// The kwok configuration for the local control plane: the stages that play the kubelet
// for simulated nodes and pods, and a ClusterExec that turns `exec` into a simulated pod
// into a local command. Written from kwok's Stage API (v1alpha1); YAML is a superset of
// JSON, so every document is emitted as JSON.
//
// How a test makes pods not Ready:
// - annotate a pod `sickbay.dev/simulate-ready: "false"`: a Ready pod turns NotReady (its
//   containers keep running); a new pod starts Running but never Ready. Removing the
//   annotation (or setting "true") makes it Ready again.
// - list a node in `neverReadyNodes`: every pod placed there stays Pending, its containers
//   never created (ContainerCreating), as on a node whose runtime or CNI cannot start a
//   sandbox.

export const SIMULATE_READY_ANNOTATION = 'sickbay.dev/simulate-ready';
/**
 * On a node: kwok leaves the node's status alone, as a kubelet that stopped would. The
 * test then writes the status it wants (Ready Unknown, DiskPressure...), and
 * kube-controller-manager's node lifecycle controller reacts to it as to a real node's
 * (its pods marked NotReady, the not-ready or unreachable taints). kwok still renews the
 * node's Lease, so only the status says the kubelet is gone. Removing the annotation
 * hands the node back to kwok, which reports it Ready again.
 */
export const SIMULATE_KUBELET_ANNOTATION = 'sickbay.dev/simulate-kubelet';

export interface KwokSimulation {
  /** Pods scheduled to these nodes are never started: Pending, containers ContainerCreating. */
  neverReadyNodes?: string[];
  /** The local working directory and environment of commands run by `exec`. */
  exec?: { workDir: string; env?: Record<string, string> };
}

type Expression = { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] };

// kwok rejects an empty value list for In/NotIn; this name can never be a node's.
const NO_NODE = '#none#';

const readyStatus = '.status.conditions.[] | select( .type == "Ready" ) | .status';
const simulateReady = `.metadata.annotations["${SIMULATE_READY_ANNOTATION}"]`;

function stage(name: string, kind: 'Node' | 'Pod', matchExpressions: Expression[], next: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'Stage',
    metadata: { name },
    spec: { resourceRef: { apiGroup: 'v1', kind }, selector: { matchExpressions }, ...extra, next },
  };
}

const nodeConditions = (ready: boolean) => `
{{ $now := Now }}
conditions:
- type: Ready
  status: "${ready ? 'True' : 'False'}"
  reason: KubeletReady
  message: kwok simulates this node
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ or .metadata.creationTimestamp $now | Quote }}
{{ range list "MemoryPressure" "DiskPressure" "PIDPressure" "NetworkUnavailable" }}
- type: {{ . }}
  status: "False"
  reason: KubeletHasSufficient
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ or $.metadata.creationTimestamp $now | Quote }}
{{ end }}`;

const nodeInitialize = `${nodeConditions(true)}
addresses:
- type: InternalIP
  address: {{ NodeIP | Quote }}
- type: Hostname
  address: {{ NodeName | Quote }}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ NodePort }}
allocatable: {cpu: "1k", memory: "1Ti", pods: "1M"}
capacity: {cpu: "1k", memory: "1Ti", pods: "1M"}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
  containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
  kernelVersion: ""
  osImage: ""
  machineID: ""
  systemUUID: ""
  bootID: ""
phase: Running`;

// Running containers, each `ready` or not, started at the template expression `startedAt`.
const containerStatuses = (ready: boolean, startedAt: string) => `containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: ${ready}
  started: true
  restartCount: 0
  state: {running: {startedAt: {{ ${startedAt} | Quote }}}}
{{ end }}`;

// A pod whose containers run; `ready` says whether it passes its readiness checks.
const podRunning = (ready: boolean) => `
{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "${ready ? 'True' : 'False'}", lastTransitionTime: {{ $now | Quote }}${ready ? '' : ', reason: ContainersNotReady'}}
- {type: ContainersReady, status: "${ready ? 'True' : 'False'}", lastTransitionTime: {{ $now | Quote }}${ready ? '' : ', reason: ContainersNotReady'}}
${containerStatuses(ready, '$now')}
initContainerStatuses:
{{ range .spec.initContainers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  restartCount: 0
  state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ or .status.startTime $now | Quote }}`;

// A pod the node never starts: scheduled, its containers waiting to be created.
const podNeverStarted = `
{{ $now := Now }}
conditions:
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Initialized, status: "False", lastTransitionTime: {{ $now | Quote }}, reason: ContainersNotInitialized}
- {type: Ready, status: "False", lastTransitionTime: {{ $now | Quote }}, reason: ContainersNotReady}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state: {waiting: {reason: ContainerCreating}}
{{ end }}
phase: Pending
startTime: {{ or .status.startTime $now | Quote }}`;

// Flip readiness only; the containers keep running and the pod keeps its IP.
const podReadiness = (ready: boolean) => `
{{ $now := Now }}
conditions:
- {type: Ready, status: "${ready ? 'True' : 'False'}", lastTransitionTime: {{ $now | Quote }}${ready ? '' : ', reason: ContainersNotReady'}}
- {type: ContainersReady, status: "${ready ? 'True' : 'False'}", lastTransitionTime: {{ $now | Quote }}${ready ? '' : ', reason: ContainersNotReady'}}
${containerStatuses(ready, 'or $.status.startTime $now')}`;

export function kwokConfigDocuments(sim: KwokSimulation = {}): object[] {
  const broken = sim.neverReadyNodes?.length ? sim.neverReadyNodes : [NO_NODE];
  const alive: Expression[] = [{ key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' }];
  const kubeletRuns: Expression = { key: `.metadata.annotations["${SIMULATE_KUBELET_ANNOTATION}"]`, operator: 'DoesNotExist' };
  const wantsReady: Expression[] = [
    { key: simulateReady, operator: 'NotIn', values: ['false'] },
    { key: '.spec.nodeName', operator: 'NotIn', values: broken },
  ];
  const docs: object[] = [
    // kwok plays 4 pod stages at a time by default; thousands of pods starting together
    // (the benchmarks) wait minutes for that queue, not for the API server. With a
    // KwokConfiguration given, kwok does not fill in its documented defaults (exec then
    // answered "Debug endpoints are disabled"), so the ones we rely on are spelled out.
    {
      apiVersion: 'config.kwok.x-k8s.io/v1alpha1',
      kind: 'KwokConfiguration',
      options: {
        podPlayStageParallelism: 32,
        nodePlayStageParallelism: 8,
        enableDebuggingHandlers: true,
        nodeLeaseParallelism: 4,
        podsOnNodeSyncParallelism: 1,
        enablePodsOnNodeSyncListPager: true,
      },
    },
    stage('node-initialize', 'Node', [kubeletRuns, { key: readyStatus, operator: 'NotIn', values: ['True'] }], { statusTemplate: nodeInitialize }),
    stage(
      'node-heartbeat',
      'Node',
      [
        kubeletRuns,
        { key: '.status.phase', operator: 'In', values: ['Running'] },
        { key: readyStatus, operator: 'In', values: ['True'] },
      ],
      { statusTemplate: nodeConditions(true) },
      { delay: { durationMilliseconds: 10_000, jitterDurationMilliseconds: 2_000 }, immediateNextStage: true },
    ),
    stage('pod-ready', 'Pod', [...alive, { key: '.status.phase', operator: 'In', values: ['Pending'] }, ...wantsReady], {
      statusTemplate: podRunning(true),
    }),
    stage(
      'pod-start-not-ready',
      'Pod',
      [...alive, { key: '.status.phase', operator: 'In', values: ['Pending'] }, { key: simulateReady, operator: 'In', values: ['false'] }],
      { statusTemplate: podRunning(false) },
    ),
    stage(
      'pod-start-on-broken-node',
      'Pod',
      [...alive, { key: '.status.phase', operator: 'In', values: ['Pending'] }, { key: '.status.startTime', operator: 'DoesNotExist' }, { key: '.spec.nodeName', operator: 'In', values: broken }],
      { statusTemplate: podNeverStarted },
    ),
    stage(
      'pod-become-not-ready',
      'Pod',
      [
        ...alive,
        { key: '.status.phase', operator: 'In', values: ['Running'] },
        { key: readyStatus, operator: 'In', values: ['True'] },
        { key: simulateReady, operator: 'In', values: ['false'] },
      ],
      { statusTemplate: podReadiness(false) },
    ),
    stage(
      'pod-become-ready',
      'Pod',
      [...alive, { key: '.status.phase', operator: 'In', values: ['Running'] }, { key: readyStatus, operator: 'NotIn', values: ['True'] }, ...wantsReady],
      { statusTemplate: podReadiness(true) },
    ),
    stage('pod-delete', 'Pod', [{ key: '.metadata.deletionTimestamp', operator: 'Exists' }], { delete: true }),
  ];
  if (sim.exec) {
    docs.push({
      apiVersion: 'kwok.x-k8s.io/v1alpha1',
      kind: 'ClusterExec',
      metadata: { name: 'local-exec' },
      spec: {
        execs: [
          {
            local: {
              workDir: sim.exec.workDir,
              envs: Object.entries(sim.exec.env ?? {}).map(([name, value]) => ({ name, value })),
            },
          },
        ],
      },
    });
  }
  return docs;
}

export function kwokConfigYaml(sim: KwokSimulation = {}): string {
  return kwokConfigDocuments(sim)
    .map((d) => JSON.stringify(d, null, 1))
    .join('\n---\n');
}
