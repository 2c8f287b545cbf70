// `npm start`: sickbay on an embedded cluster. A real control plane with 3 kwok nodes,
// certificates, the webhooks registered, `sickbay serve` running as its own process
// under its least-privilege ServiceAccount, and namespace `demo` opted in with a sample
// Deployment and Service. Ctrl-C stops everything.
// With `--real-node` (or SICKBAY_REAL_NODE=1) it adds a real node (containerd and a real
// kubelet, images built here), a ZooKeeper server, an S3-compatible server for the scene
// archive, and a JVM Deployment `shop` on that node whose pods run under the shim (the
// flight recorder on), register themselves in ZooKeeper and can be broken.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1PodSpec } from '@kubernetes/client-node';
import type { NodeHealth } from '../src/core/nodehealth.js';
import { ANN_CHECKPOINT, ANN_FLIGHT_RECORDER, LABEL_INJECTION } from '../src/core/names.js';
import { waitFor } from '../src/util/wait.js';
import { freePorts, LocalControlPlane } from './control-plane.js';
import { chartDir, findHelm, HELM_MISSING } from './helm.js';
import { IMAGES, WORKLOAD_COMMAND } from './images.js';
import { REAL_NODE } from './real-node.js';
import { ZooKeeperServer } from './zookeeper-server.js';
import { S3Server } from './s3-server.js';
import { writeFakeProcess } from './fake-proc.js';
import { podReport } from './pod-report.js';
import { installChartObjects, localServe } from './local-install.js';
import { codeOf, errorText } from '../src/kube/api.js';

const devDir = path.resolve(process.env.SICKBAY_DEV_DIR ?? '.sickbay-dev');
const kubeconfig = path.join(devDir, 'kubeconfig');
const clusterDir = path.join(devDir, 'playground-cluster');
const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const say = (l: string) => process.stdout.write(`[playground] ${l}\n`);

const children: ChildProcess[] = [];
let cp: LocalControlPlane | undefined;
let zk: ZooKeeperServer | undefined;
let s3: S3Server | undefined;
const realNode = process.argv.includes('--real-node') || process.env.SICKBAY_REAL_NODE === '1';
let stopping = false;

async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  say('stopping');
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );
  await cp?.stop();
  await zk?.stop();
  s3?.stop();
  rmSync(kubeconfig, { force: true });
  rmSync(clusterDir, { recursive: true, force: true });
  say('stopped; nothing left running');
  process.exit(code);
}

async function main() {
  mkdirSync(devDir, { recursive: true });
  rmSync(clusterDir, { recursive: true, force: true }); // a crashed run's data
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => void stop(0));
  say('starting the local control plane (the first run builds it: 15-30 minutes)');
  cp = await LocalControlPlane.start({ nodes: 3, dir: clusterDir, handleSignals: false, kubeconfigPath: kubeconfig, simulation: { exec: { workDir: devDir } }, realNode, log: (l) => say(l) });
  say(`nodes: 3 kwok nodes (simulated: no containers run)${realNode ? `, and ${REAL_NODE.name} (a real kubelet and containerd on this machine)` : ''}`);
  if (realNode) zk = await ZooKeeperServer.start(REAL_NODE.ip);
  // The scene archive's store, where the real node's pods reach it (sickbay runs there).
  if (realNode) s3 = await S3Server.start(REAL_NODE.ip);
  const admin = cp.kubeConfig();
  const namespace = 'sickbay-system';
  // With the real node, sickbay runs from its image through the chart, as on a real
  // cluster; without it, `sickbay serve` runs here as a process.
  if (realNode) await installChart(cp, namespace);
  else await serveHere(cp, admin, namespace);

  // One `sickbay agent` per simulated node, as the DaemonSet runs them. A kwok node has
  // no processes: each agent watches a "containerd" in a /proc of its own.
  // (On the real node the chart's DaemonSet runs the agent.)
  const nodeNames = (await admin.makeApiClient(CoreV1Api).listNode()).items.map((n) => n.metadata!.name!).sort();
  for (const node of nodeNames.filter((n) => n !== REAL_NODE.name)) {
    // Its token is bound to a pod on its node, as the DaemonSet's pods' tokens are: it
    // names the node, and the chart's agent guard lets an agent write only its own.
    const placeholder = await admin.makeApiClient(CoreV1Api).createNamespacedPod({
      namespace,
      body: {
        metadata: { name: `sickbay-agent-${node}`, labels: { 'app.kubernetes.io/name': 'sickbay', 'app.kubernetes.io/component': 'simulated-agent' } },
        // Tolerates everything, as the DaemonSet does: evicted from a node sickbay isolates, its
        // token would die with it and the agent could not report the node healthy again.
        spec: { nodeName: node, serviceAccountName: 'sickbay-agent', tolerations: [{ operator: 'Exists' }], containers: [{ name: 'agent', image: 'sickbay.local/sickbay:dev', command: ['sleep', 'infinity'] }] },
      },
    });
    const agentKubeconfig = path.join(devDir, `sickbay-agent-${node}.kubeconfig`);
    const bound = await cp.serviceAccountKubeConfig(namespace, 'sickbay-agent', { name: placeholder.metadata!.name!, uid: placeholder.metadata!.uid! });
    writeFileSync(agentKubeconfig, bound.exportConfig(), { mode: 0o600 });
    const procRoot = path.join(devDir, 'nodes', node, 'proc');
    rmSync(procRoot, { recursive: true, force: true });
    writeFakeProcess(procRoot, 100, 'containerd');
    const agent = spawn(process.execPath, ['--import', 'tsx', cli, 'agent', '--node-name', node, '--kubeconfig', agentKubeconfig], {
      env: {
        ...process.env,
        SICKBAY_AGENT_CHECKS: 'conditions,network,processes',
        SICKBAY_AGENT_PROCESSES: 'containerd',
        SICKBAY_AGENT_PROC_ROOT: procRoot,
        SICKBAY_AGENT_PORT: '0',
        SICKBAY_LOG_LEVEL: process.env.SICKBAY_LOG_LEVEL ?? 'info',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(agent);
    agent.on('exit', (code) => {
      if (!stopping) {
        say(`sickbay agent for ${node} exited (code ${code}); stopping`);
        void stop(1);
      }
    });
  }

  const core = admin.makeApiClient(CoreV1Api);
  const apps = admin.makeApiClient(AppsV1Api);
  await core.createNamespace({ body: { metadata: { name: 'demo', labels: { [LABEL_INJECTION]: 'enabled' } } } });
  await waitFor('the demo namespace default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace: 'demo' }).then(() => true));
  // The API server picks up new webhook configurations within a moment: create the
  // sample app once a probe pod comes back injected.
  await waitFor(
    'the webhook to be in effect',
    async () => {
      const probe = await core.createNamespacedPod({ namespace: 'demo', body: { metadata: { generateName: 'probe-' }, spec: { containers: [{ name: 'c', image: 'x', command: ['true'] }] } } });
      await core.deleteNamespacedPod({ namespace: 'demo', name: probe.metadata!.name!, gracePeriodSeconds: 0 });
      return probe.metadata?.annotations?.['sickbay.io/injected'] === 'true';
    },
    { timeoutMs: 20_000, intervalMs: 300 },
  );
  await deployApp(apps, core, 'hello', 3, { containers: [{ name: 'hello', image: 'registry.example/hello:1', command: ['/hello', '--listen=:8080'] }] });
  await waitFor('3 ready hello pods', async () => {
    const pods = (await core.listNamespacedPod({ namespace: 'demo', labelSelector: 'app=hello' })).items;
    return pods.length === 3 && pods.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  });
  if (realNode) await startShop(core, apps, cp.file('logs/kubelet.log'));
  await waitFor(`a healthy NodeHealth for each of the ${nodeNames.length} nodes`, async () => {
    const list = (await admin.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths' })) as { items: NodeHealth[] };
    return list.items.filter((h) => h.status?.healthy).length === nodeNames.length;
  });

  process.stdout.write(`
sickbay playground ready

  export KUBECONFIG=${kubeconfig}
  kubectl -n demo get pods -L sickbay.io/status

Three things to try:
  1. Make a pod fail (kwok stops reporting it Ready):
       kubectl -n demo annotate pod "$(kubectl -n demo get pods -l app=hello -o name | head -1 | cut -d/ -f2)" sickbay.dev/simulate-ready=false
  2. Watch it be quarantined within seconds (grace period 10 s): it keeps running, loses app=hello, gains sickbay.io/status=quarantined:
       kubectl -n demo get pods -L sickbay.io/status,app -w
       npm run -s sickbay -- status --kubeconfig ${kubeconfig}
  3. See the replacement and the Service endpoints without the quarantined pod:
       kubectl -n demo get deploy hello; kubectl -n demo get endpointslices -l kubernetes.io/service-name=hello
       kubectl -n demo get events --field-selector reason=Quarantined
And one for nodes, break a node: its agent watches a "containerd" in ${path.join(devDir, 'nodes', '<node>', 'proc')}; remove it
  and the node is tainted sickbay.io/isolated:NoExecute ~4 s later (3 failed checks, then the controller):
       rm -r ${path.join(devDir, 'nodes', nodeNames[1] ?? 'kwok-node-1', 'proc', '100')}
       kubectl get nodehealths; kubectl get nodes -L sickbay.io/node-status
       kubectl get events --field-selector involvedObject.kind=Node
  Then lift it (the 45-minute protection lock stays, so it is not isolated again at once):
       npm run -s sickbay -- node restore ${nodeNames[1] ?? 'kwok-node-1'} --kubeconfig ${kubeconfig}

${realNode ? realNodeHelp() : ''}Ctrl-C stops everything.
`);
}

/** The JVM workload on the real node: 2 replicas under the shim, HTTP probes, registered in ZooKeeper. */
async function startShop(core: CoreV1Api, apps: AppsV1Api, kubeletLog: string) {
  await deployApp(apps, core, 'shop', 2, {
    nodeSelector: { [REAL_NODE.label]: 'real' },
    terminationGracePeriodSeconds: 2,
    containers: [
      {
        name: 'app',
        image: IMAGES.workload,
        imagePullPolicy: 'Never',
        command: WORKLOAD_COMMAND,
        ports: [{ name: 'http', containerPort: 8080 }],
        env: [
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'APP_NAME', value: 'shop' },
          { name: 'ZK_CONNECT', value: zk!.connect },
        ],
        securityContext: { runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false },
        readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 1 },
        // Kubernetes' default timing (10 s, 3 failures): the quarantine (readiness, then the
        // 10 s grace) and its hold of the liveness probe come before the kubelet gives up.
        livenessProbe: { httpGet: { path: '/live', port: 'http' }, initialDelaySeconds: 5, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3 },
      },
    ],
  }, { [ANN_FLIGHT_RECORDER]: 'true', [ANN_CHECKPOINT]: 'true' });
  await waitFor(
    '2 ready shop pods on the real node',
    async () => {
      const pods = (await core.listNamespacedPod({ namespace: 'demo', labelSelector: 'app=shop' })).items;
      return pods.length === 2 && pods.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    },
    { timeoutMs: 180_000 },
  ).catch(async (err) => {
    throw new Error(`${(err as Error).message}\n${await podReport(core, 'demo', 'app=shop', kubeletLog)}`, { cause: err });
  });
}

function realNodeHelp(): string {
  const pod = `"$(kubectl -n demo get pods -l app=shop -o name | head -1 | cut -d/ -f2)"`;
  return `On the real node (${REAL_NODE.name}), the JVM Deployment shop runs under the shim as uid 1000:
  4. Deadlock one (its readiness probe then hangs): it is quarantined, replaced, dropped from ZooKeeper, and its thread dump is kept:
       P4=${pod}; P=$P4; kubectl -n demo exec $P -- wget -q -O - --post-data '' http://127.0.0.1:8080/deadlock
       kubectl -n demo get pod $P -L sickbay.io/status; kubectl -n demo get pod $P -o jsonpath='{.metadata.annotations}'
       kubectl -n demo exec $P -- sh -c 'cat /sickbay/diag/*/threads.txt' | grep -A8 deadlock
     Before the dumps, its node's agent took a checkpoint of the JVM (CRIU: its whole memory, threads and open files);
     the annotation sickbay.io/checkpoint-result names the archive on the node, and this shows what it holds:
       kubectl -n demo get pod $P -o jsonpath='{.metadata.annotations.sickbay\.io/checkpoint-result}'
       npm run -s sickbay -- checkpoint inspect <archive>
  5. Crash another for good: the supervisor restarts the JVM inside the container (restartCount stays 0), then gives up
     and holds it. shop already keeps one scene (step 4) and this failure is its own, so the pod is evicted and replaced:
     shop is back to 2/2 (kubectl -n demo get deploy shop):
       P=${pod}; kubectl -n demo exec $P -- wget -q -O - --post-data '' http://127.0.0.1:8080/crash
       kubectl -n demo exec $P -- cat /sickbay/run/app/state; kubectl -n demo get events --field-selector involvedObject.name=$P
  6. The next morning: the scene outlives the pod. Step 5's pod went, but its bundle was archived before the eviction;
     release step 4's pod (sickbay archives its scene, then deletes it) and find both in the archive:
       npm run -s sickbay -- release demo/$P4 --kubeconfig ${kubeconfig}      (P4: step 4's pod)
       export ${Object.entries(s3!.env()).map(([k, v]) => `${k}=${v}`).join(' ')}
       npm run -s sickbay -- archives list -n demo
       npm run -s sickbay -- archives get <key>; tar -tzf <file>   (the thread dump, the flight recording, logs, Events)
  ZooKeeper (${zk!.connect}) holds the registrations under /services/shop and /dubbo.

`;
}

/**
 * `sickbay serve` as a process on this machine, with the chart's objects (its CRD,
 * ServiceAccounts, RBAC and policies, as a user installs them) and its webhooks
 * registered by URL; the chart's Deployment and DaemonSet are what run here instead.
 */
async function serveHere(local: LocalControlPlane, admin: KubeConfig, namespace: string) {
  const [port] = (await freePorts(1)) as [number];
  const { url, certs, env } = localServe({ certDir: path.join(devDir, 'certs'), port, namespace, serviceAccount: 'sickbay', podName: 'playground', validityDays: 30 });
  say('installing the chart\'s objects (helm template): its CRD, ServiceAccounts, RBAC and policies, the webhooks by URL');
  await installChartObjects(admin, { namespace, url, caPem: certs.caPem });
  const sa = await local.serviceAccountKubeConfig(namespace, 'sickbay');
  const saKubeconfig = path.join(devDir, 'sickbay-serviceaccount.kubeconfig');
  writeFileSync(saKubeconfig, sa.exportConfig(), { mode: 0o600 });

  const serve = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--kubeconfig', saKubeconfig], {
    env: {
      ...process.env,
      ...env,
      SICKBAY_LOG_LEVEL: process.env.SICKBAY_LOG_LEVEL ?? 'info',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(serve);
  serve.on('exit', (code) => {
    if (!stopping) {
      say(`sickbay serve exited (code ${code}); stopping`);
      void stop(1);
    }
  });
  await waitFor('sickbay serve to be ready', () => fetchReady(port, certs.caPem), { timeoutMs: 60_000, intervalMs: 200 });
}

/**
 * The chart, as a user installs it, with the image built here: `sickbay serve` on the real
 * node (webhooks by Service, self-managed certificates), the agent DaemonSet on it too.
 */
async function installChart(local: LocalControlPlane, namespace: string) {
  const helm = findHelm();
  if (!helm) throw new Error(HELM_MISSING);
  const [repository, tag] = IMAGES.sickbay.split(':') as [string, string];
  const node = JSON.stringify({ [REAL_NODE.label]: 'real' });
  const args = [
    'install', 'sickbay', chartDir, '--namespace', namespace, '--create-namespace', '--wait=false',
    '--set', `image.repository=${repository}`, '--set', `image.tag=${tag}`, '--set', 'image.pullPolicy=Never',
    '--set', `shim.image.repository=${IMAGES.shim.split(':')[0]}`,
    '--set', 'certificates.mode=self-managed', '--set', 'replicas=1',
    '--set-json', `nodeSelector=${node}`, '--set-json', `agent.nodeSelector=${node}`,
    '--set', `agent.kubeletUrl=${local.realNode!.kubeletHealthz}`, '--set', 'agent.processes=containerd\\,kubelet',
    // Checkpoints through the real kubelet (shop asks for them), whose port and root folder are the playground's own.
    '--set', 'agent.checkpoints.enabled=true', '--set', `agent.checkpoints.kubeletPort=${local.realNode!.kubeletPort}`, '--set', `agent.checkpoints.kubeletRootDir=${local.realNode!.kubeletRootDir}`,
    '--set-json', `controllers.registries=${JSON.stringify([{ name: 'zk', connect: zk!.connect }])}`,
    '--set', 'controllers.archive.enabled=true', '--set', `controllers.archive.endpoint=${s3!.endpoint}`, '--set', `controllers.archive.bucket=${s3!.bucket}`,
    '--set', 'controllers.archive.credentialsSecret=sickbay-archive', '--set', 'controllers.archive.caConfigMap=sickbay-archive-ca',
  ];
  // The store's credentials and CA, as an operator creates them before the install.
  const admin = local.kubeConfig().makeApiClient(CoreV1Api);
  await admin.createNamespace({ body: { metadata: { name: namespace } } });
  await admin.createNamespacedSecret({ namespace, body: { metadata: { name: 'sickbay-archive' }, stringData: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey } } });
  await admin.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'sickbay-archive-ca' }, data: { 'ca.crt': readFileSync(s3!.caFile, 'utf8') } } });
  say('installing the chart (helm install) with the image built here');
  await new Promise<void>((resolve, reject) =>
    execFile(helm, args, { env: { ...process.env, KUBECONFIG: local.kubeconfigPath, HELM_CACHE_HOME: path.join(devDir, 'helm/cache'), HELM_CONFIG_HOME: path.join(devDir, 'helm/config'), HELM_DATA_HOME: path.join(devDir, 'helm/data') } }, (err, _out, stderr) =>
      err ? reject(new Error(`helm install failed: ${stderr}`)) : resolve(),
    ),
  );
  const core = local.kubeConfig().makeApiClient(CoreV1Api);
  await waitFor(
    'the sickbay serve pod Ready on the real node',
    async () => {
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=serve' })).items;
      return pods.some((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    },
    { timeoutMs: 180_000, intervalMs: 1000 },
  ).catch(async (err) => {
    throw new Error(`${(err as Error).message}\n${await podReport(core, namespace, '', local.file('logs/kubelet.log'))}`, { cause: err });
  });
}

/** A Deployment of pods labelled app=<name>, and a Service for them on port 80. */
async function deployApp(apps: AppsV1Api, core: CoreV1Api, name: string, replicas: number, spec: V1PodSpec, annotations?: Record<string, string>) {
  const labels = { app: name };
  await apps.createNamespacedDeployment({ namespace: 'demo', body: { metadata: { name }, spec: { replicas, selector: { matchLabels: labels }, template: { metadata: { labels, annotations }, spec } } } });
  await core.createNamespacedService({ namespace: 'demo', body: { metadata: { name }, spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] } } });
}

async function fetchReady(port: number, ca: string): Promise<boolean> {
  const https = await import('node:https');
  return new Promise((resolve) => {
    https
      .get({ host: '127.0.0.1', port, path: '/readyz', ca, servername: 'localhost' }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      })
      .on('error', () => resolve(false));
  });
}

main().catch((err) => {
  process.stderr.write(`[playground] failed: ${codeOf(err) !== undefined ? errorText(err) : err instanceof Error ? err.message : String(err)}\n`);
  void stop(1);
});
