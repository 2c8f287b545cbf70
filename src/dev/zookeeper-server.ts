// A real ZooKeeper server (Debian's `zookeeper` package) on loopback (or another address
// of this machine: the real node's, for its pods), a free port and a temp data dir; it can
// be stopped and started again on the same port and data. Used by the integration tests
// and the playground.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from '../util/wait.js';
import { freePorts } from './control-plane.js';

const JAR = '/usr/share/java/zookeeper.jar';

export class ZooKeeperServer {
  private child?: ChildProcess;
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly host: string,
  ) {}

  static async start(host = '127.0.0.1'): Promise<ZooKeeperServer> {
    if (!existsSync(JAR)) throw new Error(`ZooKeeper is not installed (${JAR} missing): apt-get install zookeeper`);
    const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-zk-'));
    const [port] = (await freePorts(1)) as [number];
    mkdirSync(path.join(dir, 'data'));
    writeFileSync(
      path.join(dir, 'zoo.cfg'),
      [`tickTime=500`, `dataDir=${dir}/data`, `clientPort=${port}`, `clientPortAddress=${host}`, 'admin.enableServer=false', 'maxSessionTimeout=20000', '4lw.commands.whitelist=ruok'].join('\n'),
    );
    const zk = new ZooKeeperServer(dir, port, host);
    await zk.resume();
    return zk;
  }

  get connect() {
    return `${this.host}:${this.port}`;
  }

  async resume() {
    this.child = spawn('java', ['-cp', JAR, '-Dzookeeper.admin.enableServer=false', 'org.apache.zookeeper.server.quorum.QuorumPeerMain', path.join(this.dir, 'zoo.cfg')], {
      stdio: 'ignore',
    });
    await waitFor(`ZooKeeper on ${this.connect}`, () => ruok(this.host, this.port), { timeoutMs: 30_000, intervalMs: 200 });
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

/** ZooKeeper's "ruok"; a server that accepts and does not answer within 2 s is not ready. */
function ruok(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => s.write('ruok'));
    let data = '';
    s.setTimeout(2000, () => s.destroy());
    s.on('data', (d) => (data += d));
    s.on('close', () => resolve(data === 'imok'));
    s.on('error', () => resolve(false));
  });
}
