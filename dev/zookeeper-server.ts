// A real ZooKeeper server (Debian's `zookeeper` package) on loopback (or another address
// of this machine: the real node's, for its pods), a free port and a temp data dir; it can
// be stopped and started again on the same port and data. Used by the integration tests
// and the playground.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from '../src/util/wait.js';
import { freePorts, tail } from './control-plane.js';

const JAR = '/usr/share/java/zookeeper.jar';
// The jar's manifest names slf4j's API and no binding, so ZooKeeper logs nothing. The
// simple binding (Debian's libslf4j-java, a dependency of the zookeeper package) writes
// its log, timed, to a file beside the data: what a failed start is explained by.
const SLF4J_SIMPLE = '/usr/share/java/slf4j-simple.jar';
const START_TIMEOUT_MS = 60_000;

export class ZooKeeperServer {
  private child?: ChildProcess;
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly host: string,
  ) {}

  static async start(host = '127.0.0.1'): Promise<ZooKeeperServer> {
    if (!existsSync(JAR)) throw new Error(`ZooKeeper is not installed (${JAR} missing): apt-get install zookeeper`);
    // A port found free can be taken before ZooKeeper binds it; then another is tried.
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-zk-'));
      const [port] = (await freePorts(1)) as [number];
      mkdirSync(path.join(dir, 'data'));
      writeFileSync(
        path.join(dir, 'zoo.cfg'),
        [`tickTime=500`, `dataDir=${dir}/data`, `clientPort=${port}`, `clientPortAddress=${host}`, 'admin.enableServer=false', 'maxSessionTimeout=20000', '4lw.commands.whitelist=ruok'].join('\n'),
      );
      const zk = new ZooKeeperServer(dir, port, host);
      try {
        await zk.revive();
        return zk;
      } catch (err) {
        if (attempt >= 3 || !/Address already in use/.test(tail(zk.logFile, 40))) throw err;
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  get connect() {
    return `${this.host}:${this.port}`;
  }

  get logFile() {
    return path.join(this.dir, 'zookeeper.log');
  }

  /** Starts the server (again, after kill) on its port and data. */
  async revive() {
    const classpath = existsSync(SLF4J_SIMPLE) ? `${JAR}:${SLF4J_SIMPLE}` : JAR;
    const log = openSync(this.logFile, 'a');
    const child = spawn(
      'java',
      [
        '-cp',
        classpath,
        '-Dzookeeper.admin.enableServer=false',
        '-Dorg.slf4j.simpleLogger.showDateTime=true',
        '-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS',
        'org.apache.zookeeper.server.quorum.QuorumPeerMain',
        path.join(this.dir, 'zoo.cfg'),
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    this.child = child;
    const started = Date.now();
    try {
      await waitFor(
        `ZooKeeper on ${this.connect}`,
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new ExitedError(`java exited (${child.exitCode ?? child.signalCode})`);
          const answer = await ruok(this.host, this.port);
          if (answer === 'imok') return true;
          throw new Error(answer);
        },
        { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, stopOn: (err) => err instanceof ExitedError },
      );
    } catch (err) {
      await this.kill();
      const logEnd = tail(this.logFile, 20);
      throw new Error(`${(err as Error).message} (after ${Date.now() - started} ms); the end of its log, ${this.logFile}:\n${logEnd}`, { cause: err });
    }
  }

  /** SIGSTOP: a hung server. The kernel still accepts connections; nothing answers them. */
  freeze() {
    this.child?.kill('SIGSTOP');
  }

  /** SIGCONT: the hung server goes on, and answers what queued up meanwhile. */
  thaw() {
    this.child?.kill('SIGCONT');
  }

  /** SIGKILL; `revive` starts it again on the same port and data. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Kills it and removes its data. */
  async stop() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

class ExitedError extends Error {}

/**
 * ZooKeeper's "ruok": 'imok', or what went wrong, named so that a start that times out
 * says which stage it was stuck in (refused: not listening yet; no connection: the
 * address does not answer; accepted, no answer: listening, not serving).
 */
export function ruok(host: string, port: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    let connected = false;
    let data = '';
    let outcome: string | undefined;
    const s = net.connect(port, host, () => {
      connected = true;
      s.write('ruok');
    });
    s.setTimeout(timeoutMs, () => {
      outcome = connected ? `accepted, no answer within ${timeoutMs} ms` : `no connection within ${timeoutMs} ms`;
      s.destroy();
    });
    s.on('data', (d) => {
      data += d;
      // The answer is enough: ZooKeeper's NIO server may close the connection late
      // after a four-letter word (seen: seconds, on a busy machine).
      if (data === 'imok') s.destroy();
    });
    s.on('error', (err: NodeJS.ErrnoException) => (outcome ??= err.code === 'ECONNREFUSED' ? 'connection refused' : err.message));
    s.on('close', () => resolve(data === 'imok' ? 'imok' : (outcome ?? `answered ${JSON.stringify(data)}`)));
  });
}
