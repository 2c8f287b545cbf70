// A real Kubernetes control plane on loopback: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, and kwok playing the kubelet of simulated
// nodes; with `realNode`, also a real node (containerd, kubelet, kube-proxy: ./real-node.ts).
// Used by the integration tests, `npm start` and `npm run cluster:up`.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { createCA, type IssuedCertificate, issueCertificate } from '../src/tls/certificates.js';
import { sleep, waitFor } from '../src/util/wait.js';
import { type Binaries, type BinaryName, CONTROL_PLANE_BINARIES, ensureBinaries, NODE_BINARIES } from './binaries.js';
import { buildImages, IMAGES, importImages } from './images.js';
import {
  checkRealNodePrerequisites,
  cleanupRealNode,
  kubeletArgs,
  kubeProxyArgs,
  REAL_NODE,
  realNodePaths,
  writeCriuConfig,
  setUpNodeNetwork,
  writeNodeFiles,
} from './real-node.js';
import { type KwokSimulation, kwokConfigYaml } from './kwok-config.js';

export interface ControlPlaneOptions {
  /** How many kwok nodes to create and wait for (default 1). */
  nodes?: number;
  /** Folder for data, PKI and logs; default a new temp dir, removed on stop. */
  dir?: string;
  /** Keep the processes running after this Node.js process exits (`cluster:up`). */
  detached?: boolean;
  /**
   * Install SIGINT/SIGTERM handlers that kill the control plane and exit (default true).
   * A program with its own orderly shutdown (the playground) turns this off and calls
   * stop(); the exit hook that kills leftover children stays either way.
   */
  handleSignals?: boolean;
  /** Also write the admin kubeconfig here. */
  kubeconfigPath?: string;
  simulation?: KwokSimulation;
  /**
   * Add a real node (containerd, a real kubelet and kube-proxy on this machine, images
   * built here) named `sickbay-real-node` beside the kwok nodes. Needs root.
   */
  realNode?: boolean;
  log?: (line: string) => void;
}

type ProcessName = BinaryName;

interface ProcessRecord {
  name: ProcessName;
  pid: number;
  bin: string;
}

export interface ControlPlaneState {
  dir: string;
  removeDir: boolean;
  server: string;
  kubeconfig: string;
  processes: ProcessRecord[];
  realNode?: boolean;
}

const STATE_FILE = 'control-plane.json';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const live = new Set<LocalControlPlane>();
let exitHooksInstalled = false;

// A SIGINT/SIGTERM or a crash of the test process must not leave a control plane behind.
let signalHooksInstalled = false;
function installExitHooks(signals: boolean) {
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    process.on('exit', () => {
      for (const cp of live) cp.killNow();
    });
  }
  if (!signals || signalHooksInstalled) return;
  signalHooksInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const cp of live) cp.killNow();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/**
 * Ports free on every address of this machine. The probe binds the wildcard address,
 * which fails if any address has a listener on the port: a probe on loopback alone
 * would hand out a port already served on the real node's address (the API server's,
 * the kubelet's), and the server given it could not bind.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '0.0.0.0', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export class LocalControlPlane {
  readonly dir: string;
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly ca: IssuedCertificate;
  private readonly admin: IssuedCertificate;
  private readonly children = new Map<ProcessName, ChildProcess>();
  private readonly records: ProcessRecord[] = [];
  private stopped = false;
  private kwokArgs: string[] = [];
  private apiserverArgs: string[] = [];
  /** Set once the real node is up: where its kubelet answers health checks. */
  /**
   * The real node: its kubelet's health endpoint, its authenticated API (checkpoints) and
   * root folder (the archives are under checkpoints/).
   */
  realNode?: { name: string; kubeletHealthz: string; kubeletApi: string; kubeletPort: number; kubeletRootDir: string };

  private constructor(
    private readonly opts: ControlPlaneOptions,
    private readonly bins: Binaries,
    private readonly removeDir: boolean,
    dir: string,
    private readonly ports: { etcd: number; etcdPeer: number; apiserver: number; kcm: number; scheduler: number; kwok: number },
  ) {
    this.dir = dir;
    // With a real node the API server listens on the node's address, where pods reach it.
    this.server = `https://${opts.realNode ? REAL_NODE.ip : '127.0.0.1'}:${ports.apiserver}`;
    this.kubeconfigPath = path.join(dir, 'kubeconfig');
    this.ca = createCA('sickbay-local-control-plane');
    // One certificate serves the API server, kwok's kubelet API and the admin user, and
    // its key signs service account tokens (kwokctl's trimmed layout).
    this.admin = issueCertificate(this.ca, {
      commonName: 'kube-admin',
      organizations: ['system:masters'],
      dnsNames: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'],
      ipAddresses: ['127.0.0.1', '10.0.0.1', REAL_NODE.ip, REAL_NODE.apiServiceIp],
      usages: ['server', 'client'],
      validityDays: 30,
    });
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<LocalControlPlane> {
    const log = opts.log ?? ((l: string) => process.stderr.write(`[control-plane] ${l}\n`));
    if (opts.realNode) checkRealNodePrerequisites();
    const bins = await ensureBinaries(log, process.env, opts.realNode ? [...CONTROL_PLANE_BINARIES, ...NODE_BINARIES] : CONTROL_PLANE_BINARIES);
    const removeDir = !opts.dir;
    const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'sickbay-cp-'));
    mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const [etcd, etcdPeer, apiserver, kcm, scheduler, kwok] = (await freePorts(6)) as [number, number, number, number, number, number];
    const cp = new LocalControlPlane({ ...opts, log }, bins, removeDir, dir, { etcd, etcdPeer, apiserver, kcm, scheduler, kwok });
    if (!opts.detached) installExitHooks(opts.handleSignals ?? true);
    live.add(cp);
    try {
      await cp.boot();
    } catch (err) {
      await cp.stop();
      throw err;
    }
    return cp;
  }

  private get log() {
    return this.opts.log!;
  }

  /** A path in the control plane's folder (its logs are under logs/). */
  file(name: string) {
    return path.join(this.dir, name);
  }

  private async boot() {
    const t0 = Date.now();
    writeFileSync(this.file('ca.crt'), this.ca.certPem);
    writeFileSync(this.file('admin.crt'), this.admin.certPem);
    writeFileSync(this.file('admin.key'), this.admin.keyPem, { mode: 0o600 });
    this.writeKubeconfig(this.kubeconfigPath, { 'client-certificate-data': b64(this.admin.certPem), 'client-key-data': b64(this.admin.keyPem) });
    if (this.opts.kubeconfigPath) {
      mkdirSync(path.dirname(this.opts.kubeconfigPath), { recursive: true });
      this.writeKubeconfig(this.opts.kubeconfigPath, { 'client-certificate-data': b64(this.admin.certPem), 'client-key-data': b64(this.admin.keyPem) });
    }
    const { ports } = this;
    const real = !!this.opts.realNode;
    if (real) {
      cleanupRealNode(this.dir, this.bins['kube-proxy']);
      setUpNodeNetwork();
    }

    const etcdUrl = `http://127.0.0.1:${ports.etcd}`;
    const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
    this.launch('etcd', [
      '--name=sickbay',
      `--data-dir=${this.file('etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=sickbay=${peerUrl}`,
      '--listen-metrics-urls=',
      '--unsafe-no-fsync=true',
      '--quota-backend-bytes=8589934592',
      '--log-level=warn',
    ]);
    await this.waitHealthy('etcd', () => httpGet(`${etcdUrl}/health`), 30_000);

    this.apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${real ? REAL_NODE.ip : '127.0.0.1'}`,
      `--advertise-address=${real ? REAL_NODE.ip : '127.0.0.1'}`,
      `--secure-port=${ports.apiserver}`,
      `--tls-cert-file=${this.file('admin.crt')}`,
      `--tls-private-key-file=${this.file('admin.key')}`,
      `--client-ca-file=${this.file('ca.crt')}`,
      `--kubelet-client-certificate=${this.file('admin.crt')}`,
      `--kubelet-client-key=${this.file('admin.key')}`,
      `--service-account-key-file=${this.file('admin.key')}`,
      `--service-account-signing-key-file=${this.file('admin.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-cluster-ip-range=${real ? REAL_NODE.serviceCidr : '10.0.0.0/24'}`,
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      // A real node's pods reach the API server through the `kubernetes` Service, whose
      // endpoint the lease reconciler writes; webhook Services are called at their pods.
      ...(real
        ? ['--endpoint-reconciler-type=lease', '--enable-aggregator-routing=true', '--kubelet-preferred-address-types=InternalIP,Hostname']
        : ['--endpoint-reconciler-type=none']),
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--max-requests-inflight=2000',
      '--max-mutating-requests-inflight=1000',
    ];
    this.launch('kube-apiserver', this.apiserverArgs);
    await this.waitHealthy('kube-apiserver', () => this.apiGet('/readyz'), 90_000);
    this.log(`kube-apiserver ready at ${this.server} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const common = [`--kubeconfig=${this.kubeconfigPath}`, `--authentication-kubeconfig=${this.kubeconfigPath}`, `--authorization-kubeconfig=${this.kubeconfigPath}`, '--bind-address=127.0.0.1', '--leader-elect=false'];
    this.launch('kube-controller-manager', [
      ...common,
      `--secure-port=${ports.kcm}`,
      `--root-ca-file=${this.file('ca.crt')}`,
      `--service-account-private-key-file=${this.file('admin.key')}`,
      '--kube-api-qps=500',
      '--kube-api-burst=1000',
      '--concurrent-replicaset-syncs=10',
      '--concurrent-deployment-syncs=10',
    ]);
    // The scheduler's default 50 QPS binds 10,000 pods in 200 s; the benchmarks need faster.
    this.launch('kube-scheduler', [...common, `--secure-port=${ports.scheduler}`, '--kube-api-qps=500', '--kube-api-burst=1000']);
    this.kwokArgs = [
      `--kubeconfig=${this.kubeconfigPath}`,
      `--config=${this.file('kwok.yaml')}`,
      // kwok must leave the real node to its kubelet.
      real ? '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake' : '--manage-all-nodes=true',
      '--node-name=localhost',
      '--node-ip=127.0.0.1',
      `--node-port=${ports.kwok}`,
      `--server-address=127.0.0.1:${ports.kwok}`,
      `--tls-cert-file=${this.file('admin.crt')}`,
      `--tls-private-key-file=${this.file('admin.key')}`,
      '--cidr=10.244.0.1/16',
    ];
    writeFileSync(this.file('kwok.yaml'), kwokConfigYaml(this.opts.simulation));
    this.launch('kwok', this.kwokArgs);
    this.saveState();

    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    await this.addNodes(this.opts.nodes ?? 1);
    // Pods can only be created once the service account controller has made `default`.
    await waitFor('the default ServiceAccount', () => core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' }).then(() => true), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    if (real) await this.startRealNode();
    this.log(
      `control plane ready with ${this.opts.nodes ?? 1} kwok node(s)${real ? ` and the real node ${REAL_NODE.name}` : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s (logs in ${this.file('logs')})`,
    );
  }

  /** containerd, the images, the kubelet (waits for its Node to be Ready) and kube-proxy. */
  private async startRealNode() {
    const t0 = Date.now();
    checkRealNodePrerequisites();
    const { containerd, ctr } = this.bins;
    const p = realNodePaths(this.dir);
    const images = buildImages(['pause', 'sickbay', 'shim', 'workload'], this.log);
    const [kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics] = (await freePorts(4)) as [number, number, number, number];
    const serving = issueCertificate(this.ca, { commonName: REAL_NODE.name, dnsNames: [REAL_NODE.name], ipAddresses: [REAL_NODE.ip], usages: ['server'], validityDays: 30 });
    const nodeClient = issueCertificate(this.ca, { commonName: `system:node:${REAL_NODE.name}`, organizations: ['system:nodes'], usages: ['client'], validityDays: 30 });
    const proxyClient = issueCertificate(this.ca, { commonName: 'system:kube-proxy', usages: ['client'], validityDays: 30 });
    mkdirSync(p.root, { recursive: true });
    writeFileSync(path.join(p.root, 'kubelet.crt'), serving.certPem);
    writeFileSync(path.join(p.root, 'kubelet.key'), serving.keyPem, { mode: 0o600 });
    const kubeletKubeconfig = path.join(p.root, 'kubelet.kubeconfig');
    const proxyKubeconfig = path.join(p.root, 'kube-proxy.kubeconfig');
    this.writeKubeconfig(kubeletKubeconfig, { 'client-certificate-data': b64(nodeClient.certPem), 'client-key-data': b64(nodeClient.keyPem) });
    this.writeKubeconfig(proxyKubeconfig, { 'client-certificate-data': b64(proxyClient.certPem), 'client-key-data': b64(proxyClient.keyPem) });
    writeCriuConfig();
    writeNodeFiles(p, IMAGES.pause, { shim: this.bins['containerd-shim-runc-v2'], criu: this.bins.criu }, {
      port: kubeletPort,
      healthzPort: kubeletHealthz,
      caFile: this.file('ca.crt'),
      certFile: path.join(p.root, 'kubelet.crt'),
      keyFile: path.join(p.root, 'kubelet.key'),
    });

    this.launch('containerd', [`--config=${p.containerdConfig}`], containerd);
    const ctrVersion = () =>
      new Promise<void>((resolve, reject) => execFile(ctr, ['--address', p.containerdSocket, 'version'], { timeout: 3000 }, (err) => (err ? reject(err) : resolve())));
    await this.waitHealthy('containerd', ctrVersion, 30_000);
    const files = await images;
    await importImages(ctr, p.containerdSocket, Object.values(files));
    this.log(`containerd ready, images imported (${Object.values(IMAGES).join(', ')}) after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    this.kubeletArgv = kubeletArgs(p, kubeletKubeconfig);
    this.launch('kubelet', this.kubeletArgv);
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (!this.children.has('kubelet')) throw new Error(`the kubelet exited during start-up; last lines of its log:\n${tail(this.file('logs/kubelet.log'), 25)}`);
      const node = await core.readNode({ name: REAL_NODE.name }).catch(() => undefined);
      if (node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`the real node did not become Ready within 120 s; last lines of the kubelet's log:\n${tail(this.file('logs/kubelet.log'), 25)}`);
      await sleep(500);
    }
    this.launch('kube-proxy', kubeProxyArgs(proxyKubeconfig, { healthz: proxyHealthz, metrics: proxyMetrics }));
    await this.waitHealthy('kube-proxy', () => httpGet(`http://127.0.0.1:${proxyHealthz}/healthz`), 60_000);
    this.realNode = {
      name: REAL_NODE.name,
      kubeletHealthz: `http://127.0.0.1:${kubeletHealthz}/healthz`,
      kubeletApi: `https://${REAL_NODE.ip}:${kubeletPort}`,
      kubeletPort,
      kubeletRootDir: p.kubeletDir,
    };
    this.saveState();
    this.log(`real node ${REAL_NODE.name} Ready at ${REAL_NODE.ip} (containerd, kubelet, kube-proxy) after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  /** Pods off the real node (so the kubelet tears their sandboxes down), then its processes. */
  private async stopRealNode() {
    if (this.children.has('kubelet')) {
      try {
        const core = this.kubeConfig().makeApiClient(CoreV1Api);
        await core.patchNode({ name: REAL_NODE.name, body: { spec: { unschedulable: true } } }, mergePatch);
        const onNode = async () => (await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${REAL_NODE.name}` })).items;
        for (const pod of await onNode()) {
          await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0 }).catch(() => undefined);
        }
        await waitFor('the real node emptied', async () => (await onNode()).length === 0, { timeoutMs: 20_000, intervalMs: 250 }).catch(() => undefined);
      } catch (err) {
        this.log(`emptying the real node: ${String(err)} (its containers are killed instead)`);
      }
    }
    for (const name of ['kube-proxy', 'kubelet', 'containerd'] as const) await this.terminate(name);
    cleanupRealNode(this.dir, this.bins['kube-proxy']);
  }

  /** Creates `count` more kwok nodes (`kwok-node-<i>`) and waits until they are Ready. */
  async addNodes(count: number, labels: Record<string, string> = {}): Promise<string[]> {
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    const existing = (await core.listNode()).items.filter((n) => n.metadata?.annotations?.['kwok.x-k8s.io/node'] === 'fake').length;
    const names = Array.from({ length: count }, (_, i) => `kwok-node-${existing + i}`);
    await Promise.all(
      names.map((name) =>
        core.createNode({
          body: {
            metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', type: 'kwok', ...labels }, annotations: { 'kwok.x-k8s.io/node': 'fake' } },
          } satisfies V1Node,
        }),
      ),
    );
    await waitFor(
      `${count} kwok node(s) Ready`,
      async () => {
        const nodes = (await core.listNode()).items.filter((n) => names.includes(n.metadata!.name!));
        return nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === count;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    return names;
  }

  /**
   * Stops kube-apiserver (SIGTERM, as a rolling upgrade does) and starts it again with the
   * same flags. Resolves once it is ready again, with how long it was away (ms).
   */
  async restartApiServer(): Promise<number> {
    const t0 = Date.now();
    await this.terminate('kube-apiserver');
    this.launch('kube-apiserver', this.apiserverArgs);
    this.saveState();
    await this.waitHealthy('kube-apiserver', () => this.apiGet('/readyz'), 90_000);
    return Date.now() - t0;
  }

  private kubeletArgv?: string[];

  /**
   * The real node's kubelet stopped (SIGTERM, as a kubelet upgrade does), away for `awayMs`,
   * then started again with the same flags; its containers run on meanwhile (containerd).
   * Resolves once it has started again.
   */
  async restartKubelet(awayMs: number): Promise<void> {
    if (!this.kubeletArgv) throw new Error('no real node: start the control plane with realNode');
    await this.terminate('kubelet');
    await sleep(awayMs);
    this.launch('kubelet', this.kubeletArgv);
    this.saveState();
  }

  /** Changes how kwok simulates pods (restarts kwok; the cluster keeps its state). */
  async simulate(simulation: KwokSimulation): Promise<void> {
    this.opts.simulation = { ...this.opts.simulation, ...simulation };
    writeFileSync(this.file('kwok.yaml'), kwokConfigYaml(this.opts.simulation));
    await this.terminate('kwok');
    this.launch('kwok', this.kwokArgs);
    this.saveState();
    await waitFor('kwok to serve again', () => httpGet(`https://127.0.0.1:${this.ports.kwok}/healthz`, { ca: this.ca.certPem }).then(() => true), {
      timeoutMs: 15_000,
    });
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** A kubeconfig for a user authenticated by a client certificate from the cluster CA. */
  clientCertKubeConfig(user: string, groups: string[] = []): KubeConfig {
    const cert = issueCertificate(this.ca, { commonName: user, organizations: groups, usages: ['client'], validityDays: 1 });
    const file = this.file(`kubeconfig-${user.replace(/[^a-zA-Z0-9.-]/g, '_')}`);
    this.writeKubeconfig(file, { 'client-certificate-data': b64(cert.certPem), 'client-key-data': b64(cert.keyPem) });
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    return kc;
  }

  /** A kubeconfig that acts as a ServiceAccount (created if missing), by a TokenRequest. */
  /**
   * A kubeconfig with a token of the ServiceAccount. Bound to a pod, the token names the
   * pod's node (as the token the kubelet mounts in a pod does).
   */
  async serviceAccountKubeConfig(namespace: string, name: string, boundPod?: { name: string; uid: string }): Promise<KubeConfig> {
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch((err) => {
      if (err?.code !== 409) throw err;
    });
    const boundObjectRef = boundPod ? { apiVersion: 'v1', kind: 'Pod', name: boundPod.name, uid: boundPod.uid } : undefined;
    const tr = await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [], expirationSeconds: 3600, boundObjectRef } } });
    const file = this.file(`kubeconfig-sa-${namespace}-${name}${boundPod ? `-${boundPod.name}` : ''}`);
    this.writeKubeconfig(file, { token: tr.status!.token });
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    return kc;
  }

  private writeKubeconfig(file: string, user: Record<string, string>) {
    const doc = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'sickbay-local', cluster: { server: this.server, 'certificate-authority-data': b64(this.ca.certPem) } }],
      users: [{ name: 'user', user }],
      contexts: [{ name: 'sickbay-local', context: { cluster: 'sickbay-local', user: 'user' } }],
      'current-context': 'sickbay-local',
    };
    writeFileSync(file, JSON.stringify(doc, null, 2), { mode: 0o600 });
  }

  private launch(name: ProcessName, args: string[], binary?: string) {
    const logFile = this.file(`logs/${name}.log`);
    const fd = openSync(logFile, 'a');
    const bin = binary ?? this.bins[name as BinaryName];
    const child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached: !!this.opts.detached, cwd: this.dir });
    closeSync(fd);
    if (this.opts.detached) child.unref();
    child.on('error', (err) => this.log(`${name} failed to start: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (this.children.get(name) === child) this.children.delete(name);
      if (!this.stopped) this.log(`${name} exited unexpectedly (code ${code}, signal ${signal}); last lines of ${logFile}:\n${tail(logFile)}`);
    });
    this.children.set(name, child);
    const i = this.records.findIndex((r) => r.name === name);
    const rec = { name, pid: child.pid ?? -1, bin };
    if (i >= 0) this.records[i] = rec;
    else this.records.push(rec);
  }

  private async waitHealthy(name: ProcessName, probe: () => Promise<unknown>, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      if (!this.children.has(name)) {
        throw new Error(
          `${name} (${this.records.find((r) => r.name === name)?.bin}) exited during start-up; a port in use or a bad binary? Last lines of its log:\n${tail(this.file(`logs/${name}.log`))}`,
        );
      }
      try {
        await probe();
        return;
      } catch (err) {
        last = err;
      }
      await sleep(150);
    }
    throw new Error(`${name} did not become healthy within ${timeoutMs / 1000} s (${String(last)}); last lines of its log:\n${tail(this.file(`logs/${name}.log`))}`);
  }

  private apiGet(p: string) {
    return httpGet(`${this.server}${p}`, { ca: this.ca.certPem, cert: this.admin.certPem, key: this.admin.keyPem });
  }

  private saveState() {
    const state: ControlPlaneState = {
      dir: this.dir,
      removeDir: this.removeDir,
      server: this.server,
      kubeconfig: this.kubeconfigPath,
      processes: this.records,
      realNode: this.opts.realNode,
    };
    writeFileSync(this.file(STATE_FILE), JSON.stringify(state, null, 2));
  }

  /** The pid of a running component (a test stops the kubelet with SIGSTOP). */
  pidOf(name: ProcessName): number | undefined {
    return this.children.get(name)?.pid;
  }

  /** The pids of the running components (tests assert none is left). */
  pids(): number[] {
    return this.records.map((r) => r.pid);
  }

  private async terminate(name: ProcessName) {
    const child = this.children.get(name);
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    this.children.delete(name);
    child.kill('SIGTERM');
    const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.opts.realNode) await this.stopRealNode();
    for (const name of ['kwok', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'] as const) await this.terminate(name);
    live.delete(this);
    if (this.removeDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort from an exit handler. */
  killNow() {
    this.stopped = true;
    for (const child of this.children.values()) child.kill('SIGKILL');
    this.children.clear();
    if (this.opts.realNode) cleanupRealNode(this.dir, this.bins['kube-proxy']);
    live.delete(this);
    if (this.removeDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Stops a detached control plane started by `cluster:up`, from its state file. */
export async function stopDetached(dir: string, log: (l: string) => void = console.error): Promise<boolean> {
  const stateFile = path.join(dir, STATE_FILE);
  if (!existsSync(stateFile)) return false;
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as ControlPlaneState;
  for (const rec of [...state.processes].reverse()) {
    if (!isSameProcess(rec)) continue;
    process.kill(rec.pid, 'SIGTERM');
    await waitFor(`${rec.name} (pid ${rec.pid}) to exit`, () => !isSameProcess(rec), { timeoutMs: 10_000 }).catch(() => {
      if (isSameProcess(rec)) process.kill(rec.pid, 'SIGKILL');
    });
    log(`stopped ${rec.name} (pid ${rec.pid})`);
  }
  if (state.realNode) cleanupRealNode(dir, state.processes.find((p) => p.name === 'kube-proxy')?.bin);
  rmSync(stateFile, { force: true });
  return true;
}

// A recorded pid may have been reused by now: only signal it if it still runs our binary.
function isSameProcess(rec: ProcessRecord): boolean {
  try {
    return readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0')[0] === rec.bin;
  } catch {
    return false;
  }
}

function b64(s: string) {
  return Buffer.from(s).toString('base64');
}

/** The last lines of a log file, or '(no log)'. */
export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function httpGet(url: string, tls: { ca?: string; cert?: string; key?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { ...tls, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode} ${body.slice(0, 200)}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
  });
}
