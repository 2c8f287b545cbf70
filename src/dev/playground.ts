// `npm start`: sickbay on an embedded cluster. A real control plane with 3 kwok nodes,
// certificates, the webhooks registered, `sickbay serve` running as its own process
// under its least-privilege ServiceAccount, and namespace `demo` opted in with a sample
// Deployment and Service. Ctrl-C stops everything.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { NodeHealth } from '../node/nodehealth.js';
import { LABEL_INJECTION } from '../names.js';
import { waitFor } from '../util/wait.js';
import { freePorts, LocalControlPlane } from './control-plane.js';
import { writeFakeProcess } from './fake-proc.js';
import { installAgentIdentity, installIdentity, installNodeHealthCrd, localServe, registerWebhooks } from './local-install.js';

const devDir = path.resolve(process.env.SICKBAY_DEV_DIR ?? '.sickbay-dev');
const kubeconfig = path.join(devDir, 'kubeconfig');
const clusterDir = path.join(devDir, 'playground-cluster');
const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));
const say = (l: string) => process.stdout.write(`[playground] ${l}\n`);

const children: ChildProcess[] = [];
let cp: LocalControlPlane | undefined;
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
  cp = await LocalControlPlane.start({ nodes: 3, dir: clusterDir, handleSignals: false, kubeconfigPath: kubeconfig, simulation: { exec: { workDir: devDir } }, log: (l) => say(l) });
  const admin = cp.kubeConfig();
  const namespace = 'sickbay-system';
  await installIdentity(admin, namespace, 'sickbay');
  const sa = await cp.serviceAccountKubeConfig(namespace, 'sickbay');
  const saKubeconfig = path.join(devDir, 'sickbay-serviceaccount.kubeconfig');
  writeFileSync(saKubeconfig, sa.exportConfig(), { mode: 0o600 });

  const [port] = (await freePorts(1)) as [number];
  const { url, certs, env } = localServe({ certDir: path.join(devDir, 'certs'), port, namespace, serviceAccount: 'sickbay', podName: 'playground', validityDays: 30 });
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

  // One `sickbay agent` per simulated node, as the DaemonSet runs them. A kwok node has
  // no processes: each agent watches a "containerd" in a /proc of its own.
  await installNodeHealthCrd(admin);
  await installAgentIdentity(admin, namespace, 'sickbay-agent');
  const agentKubeconfig = path.join(devDir, 'sickbay-agent.kubeconfig');
  writeFileSync(agentKubeconfig, (await cp.serviceAccountKubeConfig(namespace, 'sickbay-agent')).exportConfig(), { mode: 0o600 });
  const nodeNames = (await admin.makeApiClient(CoreV1Api).listNode()).items.map((n) => n.metadata!.name!).sort();
  for (const node of nodeNames) {
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
  await registerWebhooks(admin, { url, caPem: certs.caPem, ownNamespace: namespace });

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
  const labels = { app: 'hello' };
  await apps.createNamespacedDeployment({
    namespace: 'demo',
    body: {
      metadata: { name: 'hello' },
      spec: {
        replicas: 3,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'hello', image: 'registry.example/hello:1', command: ['/hello', '--listen=:8080'] }] } },
      },
    },
  });
  await core.createNamespacedService({ namespace: 'demo', body: { metadata: { name: 'hello' }, spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] } } });
  await waitFor('3 ready hello pods', async () => {
    const pods = (await core.listNamespacedPod({ namespace: 'demo', labelSelector: 'app=hello' })).items;
    return pods.length === 3 && pods.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  });
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

Ctrl-C stops everything.
`);
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
  process.stderr.write(`[playground] failed: ${err instanceof Error ? err.message : String(err)}\n`);
  void stop(1);
});
