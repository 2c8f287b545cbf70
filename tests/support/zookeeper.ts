// A real ZooKeeper server (Debian's `zookeeper` package) on loopback, a free port and a
// temp data dir; it can be stopped and started again on the same port and data.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zookeeper from 'node-zookeeper-client';
import { freePorts } from '../../src/dev/control-plane.js';
import { waitFor } from '../../src/util/wait.js';

const JAR = '/usr/share/java/zookeeper.jar';

export class ZooKeeperServer {
  private child?: ChildProcess;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<ZooKeeperServer> {
    assert.ok(existsSync(JAR), `ZooKeeper is not installed (${JAR} missing): apt-get install zookeeper`);
    const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-zk-'));
    const [port] = (await freePorts(1)) as [number];
    mkdirSync(path.join(dir, 'data'));
    writeFileSync(
      path.join(dir, 'zoo.cfg'),
      [`tickTime=500`, `dataDir=${dir}/data`, `clientPort=${port}`, 'clientPortAddress=127.0.0.1', 'admin.enableServer=false', 'maxSessionTimeout=20000', '4lw.commands.whitelist=ruok'].join('\n'),
    );
    const zk = new ZooKeeperServer(dir, port);
    await zk.resume();
    return zk;
  }

  get connect() {
    return `127.0.0.1:${this.port}`;
  }

  async resume() {
    this.child = spawn('java', ['-cp', JAR, '-Dzookeeper.admin.enableServer=false', 'org.apache.zookeeper.server.quorum.QuorumPeerMain', path.join(this.dir, 'zoo.cfg')], {
      stdio: 'ignore',
    });
    await waitFor(`ZooKeeper on port ${this.port}`, () => ruok(this.port), { timeoutMs: 30_000, intervalMs: 200 });
  }

  async pause() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop() {
    await this.pause();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function ruok(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('ruok'));
    let data = '';
    s.on('data', (d) => (data += d));
    s.on('close', () => resolve(data === 'imok'));
    s.on('error', () => resolve(false));
  });
}

type Client = ReturnType<typeof zookeeper.createClient>;

/** A client session of its own, like each provider process has. */
export async function zkSession(connect: string): Promise<Client> {
  const c = zookeeper.createClient(connect, { sessionTimeout: 5000 });
  await new Promise<void>((resolve) => {
    c.once('connected', () => resolve());
    c.connect();
  });
  return c;
}

export function mkdirp(c: Client, p: string): Promise<void> {
  return new Promise((resolve, reject) => c.mkdirp(p, (err: unknown) => (err ? reject(err) : resolve())));
}

export function createEphemeral(c: Client, p: string, data?: string): Promise<void> {
  return new Promise((resolve, reject) =>
    c.create(p, Buffer.from(data ?? ""), zookeeper.CreateMode.EPHEMERAL, (err: unknown) => (err ? reject(err) : resolve())),
  );
}

export function exists(c: Client, p: string): Promise<boolean> {
  return new Promise((resolve, reject) => c.exists(p, (err: unknown, stat: unknown) => (err ? reject(err) : resolve(!!stat))));
}

/** Registers a Dubbo provider the way Dubbo does: an ephemeral node named by the URL-encoded provider URL. */
export async function registerDubboProvider(c: Client, iface: string, host: string, port = 20880): Promise<string> {
  const url = `dubbo://${host}:${port}/${iface}?anyhost=true&application=shop&interface=${iface}&methods=get,put&side=provider&timestamp=${Date.now()}`;
  const dir = `/dubbo/${encodeURIComponent(iface)}/providers`;
  await mkdirp(c, dir);
  const p = `${dir}/${encodeURIComponent(url)}`;
  await createEphemeral(c, p);
  return p;
}

/** A Dubbo 3 application-level instance (Curator service discovery). */
export async function registerAppInstance(c: Client, app: string, id: string, address: string): Promise<string> {
  await mkdirp(c, `/services/${app}`);
  const p = `/services/${app}/${id}`;
  await createEphemeral(c, p, JSON.stringify({ name: app, id, address, port: 20880, sslPort: null, payload: null, registrationTimeUTC: Date.now(), serviceType: 'DYNAMIC' }));
  return p;
}
