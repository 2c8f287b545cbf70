// One real control plane per integration test file, and the helpers tests share.
import assert from 'node:assert/strict';
import { AppsV1Api, type CoreV1Event, CoreV1Api, DiscoveryV1Api, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Pod, Watch } from '@kubernetes/client-node';
import { SIMULATE_KUBELET_ANNOTATION, SIMULATE_READY_ANNOTATION } from '../../dev/kwok-config.js';
import { type ControlPlaneOptions, LocalControlPlane } from '../../dev/control-plane.js';
import { waitFor } from '../../src/util/wait.js';

export interface TestCluster {
  cp: LocalControlPlane;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  discovery: DiscoveryV1Api;
  stop(): Promise<void>;
}

export async function startCluster(opts: ControlPlaneOptions = {}): Promise<TestCluster> {
  const cp = await LocalControlPlane.start({ log: (l) => process.stderr.write(`# [control-plane] ${l}\n`), ...opts });
  const kc = cp.kubeConfig();
  return {
    cp,
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    discovery: kc.makeApiClient(DiscoveryV1Api),
    async stop() {
      const pids = cp.pids();
      await cp.stop();
      const alive = pids.filter(isAlive);
      assert.deepEqual(alive, [], `control plane processes still running after stop: ${alive.join(', ')}`);
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function createNamespace(core: CoreV1Api, name: string, labels: Record<string, string> = {}) {
  await core.createNamespace({ body: { metadata: { name, labels } } });
  await waitFor(`ServiceAccount default in ${name}`, () => core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(() => true), {
    timeoutMs: 30_000,
  });
}

/**
 * A Node object as a kubelet of `kubeletVersion` on `containerRuntimeVersion` registers it,
 * unschedulable (nothing runs there): what sickbay reads of a node's software, without one.
 */
export async function createNodeOfVersions(core: CoreV1Api, name: string, versions: { kubeletVersion: string; containerRuntimeVersion: string }) {
  await core.createNode({ body: { metadata: { name, labels: { 'kubernetes.io/hostname': name } }, spec: { unschedulable: true } } });
  const nodeInfo = { ...versions, architecture: 'amd64', bootID: '', kernelVersion: '', kubeProxyVersion: '', machineID: '', operatingSystem: 'linux', osImage: '', systemUUID: '' };
  await core.replaceNodeStatus({ name, body: { metadata: { name }, status: { nodeInfo } } });
}

export function isReady(pod: V1Pod): boolean {
  return !!pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** A Deployment and a Service selecting it, `app=<name>`. */
export async function createWebApp(t: TestCluster, namespace: string, name: string, replicas: number, extra: { annotations?: Record<string, string>; podAnnotations?: Record<string, string> } = {}) {
  const labels = { app: name };
  await t.apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name, annotations: extra.annotations },
      spec: {
        replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels: { ...labels, tier: 'web' }, annotations: extra.podAnnotations },
          spec: { containers: [{ name: 'web', image: 'example.com/web:1', command: ['/app/server', '--port=8080'] }] },
        },
      },
    },
  });
  await t.core.createNamespacedService({
    namespace,
    body: { metadata: { name }, spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] } },
  });
}

/** A kwok pod turned NotReady, as a failed readiness probe would (kwok reads the simulate-ready annotation). */
export function breakPod(t: TestCluster, namespace: string, name: string) {
  return t.core.patchNamespacedPod({ name, namespace, body: { metadata: { annotations: { [SIMULATE_READY_ANNOTATION]: 'false' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

/**
 * A Deployment of `replicas` in a namespace that is not yet opted in, `broken` of its pods
 * turned NotReady together, then the namespace opted in: sickbay meets them failing at
 * one moment. Returns the broken pods' names.
 */
export async function failTogether(t: TestCluster, namespace: string, app: string, replicas: number, broken: number): Promise<string[]> {
  await createNamespace(t.core, namespace);
  await createWebApp(t, namespace, app, replicas);
  const pods = await waitFor(`${replicas} ready ${app} pods`, async () => {
    const ps = await podsOf(t.core, namespace, `app=${app}`);
    return ps.length === replicas && ps.every(isReady) ? ps : undefined;
  });
  const names = pods.slice(0, broken).map((p) => p.metadata!.name!);
  for (const name of names) await breakPod(t, namespace, name);
  await waitFor(`${broken} pods NotReady`, async () => (await podsOf(t.core, namespace, `app=${app}`)).filter((p) => !isReady(p)).length === broken);
  await t.core.patchNamespace({ name: namespace, body: { metadata: { labels: { 'sickbay.io/injection': 'enabled' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  return names;
}

/** The Events of a namespace about an object (by name, and kind if given) or of a reason. */
export async function eventsOf(t: TestCluster, namespace: string, about: { name?: string; kind?: string; reason?: string }): Promise<CoreV1Event[]> {
  const fields = [about.kind && `involvedObject.kind=${about.kind}`, about.name && `involvedObject.name=${about.name}`, about.reason && `reason=${about.reason}`].filter(Boolean);
  return (await t.core.listNamespacedEvent({ namespace, fieldSelector: fields.join(',') })).items;
}

export async function podsOf(core: CoreV1Api, namespace: string, labelSelector: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace, labelSelector })).items;
}

/** Ready endpoint addresses of a Service, from its EndpointSlices. */
export async function readyEndpoints(discovery: DiscoveryV1Api, namespace: string, service: string): Promise<string[]> {
  const slices = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
  return slices.items
    .flatMap((s) => s.endpoints ?? [])
    .filter((e) => e.conditions?.ready)
    .flatMap((e) => e.addresses)
    .sort();
}

/** A raw API request as the kubeconfig's user, for what the typed client hides (headers). */
export async function rawApiRequest(kc: KubeConfig, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const https = await import('node:https');
  const opts: import('node:https').RequestOptions = { method, headers: { 'content-type': 'application/json', ...headers } };
  await kc.applyToHTTPSOptions(opts);
  const url = new URL(path, kc.getCurrentCluster()!.server);
  return new Promise((resolve, reject) => {
    const req = https.request(url, opts, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

/**
 * A kwok node's kubelet stops: kwok leaves the node's status alone, which then says Ready
 * Unknown as kube-controller-manager writes it for a kubelet that stopped posting. A
 * heartbeat kwok had already scheduled still lands once (within its 10-12 s period), so
 * the status is written again until that period has passed: on return, the node has
 * stayed not Ready for good.
 */
export async function stopKubelet(t: TestCluster, node: string) {
  await t.core.patchNode({ name: node, body: { metadata: { annotations: { [SIMULATE_KUBELET_ANNOTATION]: 'stopped' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const since = new Date();
  const unknown = { type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastHeartbeatTime: since, lastTransitionTime: since };
  const until = Date.now() + 13_000;
  for (;;) {
    const ready = (await t.core.readNode({ name: node })).status?.conditions?.find((c) => c.type === 'Ready')?.status;
    if (ready === 'True') await t.core.patchNodeStatus({ name: node, body: { status: { conditions: [unknown] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    if (Date.now() > until && ready !== 'True') return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The kubelet is back: kwok reports the node Ready again. */
export async function startKubelet(t: TestCluster, node: string) {
  await t.core.patchNode({ name: node, body: { metadata: { annotations: { [SIMULATE_KUBELET_ANNOTATION]: null } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

/**
 * What happened to each pod of a namespace, from the objects themselves: a watch from a
 * resourceVersion, resumed from the last one seen when the API server goes away (etcd
 * keeps the history), so no change is missed and none is counted from Events (which may
 * fail to be written while the API server is away).
 */
export function recordPodHistory(t: TestCluster, namespace: string) {
  const history = new Map<string, { quarantinedAt: Set<string>; quarantines: number; deletedWhileQuarantined: boolean; quarantinedNow: boolean }>();
  let rv = '';
  let stopped = false;
  let current: { abort(): void } | undefined;
  const seen = (p: V1Pod) => {
    const name = p.metadata!.name!;
    const h = history.get(name) ?? { quarantinedAt: new Set<string>(), quarantines: 0, deletedWhileQuarantined: false, quarantinedNow: false };
    history.set(name, h);
    return h;
  };
  const onEvent = (type: string, p: V1Pod) => {
    if (!p?.metadata?.name) return;
    rv = p.metadata.resourceVersion ?? rv;
    const h = seen(p);
    const quarantined = p.metadata.labels?.['sickbay.io/status'] === 'quarantined';
    const at = p.metadata.annotations?.['sickbay.io/quarantined-at'];
    if (at) h.quarantinedAt.add(at);
    if (quarantined && !h.quarantinedNow) h.quarantines++;
    if (quarantined && (p.metadata.deletionTimestamp || type === 'DELETED')) h.deletedWhileQuarantined = true;
    h.quarantinedNow = quarantined;
  };
  const start = async (): Promise<void> => {
    if (stopped) return;
    if (!rv) {
      // A first list, or a relist after 410 Gone (an API server restarted: its watch cache
      // begins after the last version seen): what changed in the gap is read from the
      // pods as they are, so a quarantine made meanwhile is still counted once.
      const list = await t.core.listNamespacedPod({ namespace });
      for (const p of list.items) onEvent('MODIFIED', p);
      rv = list.metadata?.resourceVersion ?? '';
    }
    const watch = new Watch(t.kc);
    const onWatchEvent = (type: string, obj: unknown) => {
      if (type === 'BOOKMARK') rv = (obj as V1Pod).metadata?.resourceVersion ?? rv;
      else if (type === 'ERROR') {
        if ((obj as { code?: number }).code === 410) rv = '';
      } else onEvent(type, obj as V1Pod);
    };
    current = await watch
      .watch(`/api/v1/namespaces/${namespace}/pods`, { resourceVersion: rv, allowWatchBookmarks: true }, onWatchEvent, () => void setTimeout(() => void start().catch(() => setTimeout(() => void start(), 500)), 200))
      .catch(() => {
        setTimeout(() => void start(), 500);
        return undefined;
      });
  };
  const ready = start();
  return {
    ready,
    history,
    /** Pods quarantined more than once (two quarantined-at values, or the label set twice), or deleted once quarantined. */
    twice: () => [...history.entries()].filter(([, h]) => h.quarantinedAt.size > 1 || h.quarantines > 1 || h.deletedWhileQuarantined).map(([n]) => n),
    stop() {
      stopped = true;
      current?.abort();
    },
  };
}
