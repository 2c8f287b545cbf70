// A real S3-compatible server for the scene archive's tests and the playground: the
// Versity S3 Gateway (built from its Go module by hack/build-control-plane.sh, cached with
// the control plane binaries) serving a temp folder over TLS, on a free port of one of
// this machine's addresses (loopback, or the real node's for its pods), with a CA of its
// own. It can be stopped and started again on the same port and data.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeCerts } from '../src/cli/certs.js';
import { waitFor } from '../src/util/wait.js';
import { cacheDir } from './binaries.js';
import { freePorts, tail } from './control-plane.js';

export const VERSITYGW_VERSION = process.env.SICKBAY_VERSITYGW_VERSION ?? 'v1.8.0';

/** The gateway's binary, or an error that says how to get it. */
export function versitygwBinary(env = process.env): string {
  const bin = path.join(cacheDir(env), `versitygw-${VERSITYGW_VERSION}`, 'versitygw');
  try {
    accessSync(bin, constants.X_OK);
    return bin;
  } catch {
    throw new Error(`the S3-compatible server for the archive's tests is missing (${bin}): bash hack/build-control-plane.sh versitygw (npm test builds it)`);
  }
}

export class S3Server {
  private child?: ChildProcess;
  readonly bucket = 'scenes';
  readonly accessKeyId = 'sickbay-test';
  readonly secretAccessKey = 'sickbay-test-secret-0123456789';

  private constructor(
    readonly dir: string,
    readonly host: string,
    readonly port: number,
  ) {}

  static async start(host = '127.0.0.1'): Promise<S3Server> {
    const bin = versitygwBinary();
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-s3-'));
      mkdirSync(path.join(dir, 'data', 'scenes'), { recursive: true }); // a folder under the root is a bucket
      writeCerts({ outDir: path.join(dir, 'tls'), service: 's3', namespace: 'local', dnsNames: ['localhost'], ipAddresses: [host], validityDays: 2 });
      const [port] = (await freePorts(1)) as [number];
      const s3 = new S3Server(dir, host, port);
      try {
        await s3.revive(bin);
        return s3;
      } catch (err) {
        s3.kill();
        if (attempt >= 3 || !/address already in use/i.test(tail(s3.logFile, 40))) throw err;
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  get endpoint() {
    return `https://${this.host}:${this.port}`;
  }

  get caFile() {
    return path.join(this.dir, 'tls', 'ca.crt');
  }

  get logFile() {
    return path.join(this.dir, 'versitygw.log');
  }

  /** The settings sickbay reads (SICKBAY_ARCHIVE_*). */
  env(prefix = 'sickbay/'): Record<string, string> {
    return {
      SICKBAY_ARCHIVE_ENDPOINT: this.endpoint,
      SICKBAY_ARCHIVE_BUCKET: this.bucket,
      SICKBAY_ARCHIVE_PREFIX: prefix,
      SICKBAY_ARCHIVE_ACCESS_KEY_ID: this.accessKeyId,
      SICKBAY_ARCHIVE_SECRET_ACCESS_KEY: this.secretAccessKey,
      SICKBAY_ARCHIVE_CA_FILE: this.caFile,
    };
  }

  /** Starts the server (again, after kill) on its port and data. */
  async revive(bin = versitygwBinary()) {
    const log = openSync(this.logFile, 'a');
    const tls = path.join(this.dir, 'tls');
    this.child = spawn(
      bin,
      ['--access', this.accessKeyId, '--secret', this.secretAccessKey, '--port', `${this.host}:${this.port}`, '--cert', path.join(tls, 'tls.crt'), '--key', path.join(tls, 'tls.key'), '--quiet', 'posix', path.join(this.dir, 'data')],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    let exited = false;
    this.child.once('exit', () => (exited = true));
    await waitFor(
      `versitygw on ${this.endpoint}`,
      async () => {
        if (exited) throw new Error(`versitygw exited:\n${tail(this.logFile, 20)}`);
        // Any S3 answer (403 to an unsigned request) means it serves.
        return await new Promise<boolean>((resolve) => {
          const req = https.get(`${this.endpoint}/`, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
            res.resume();
            resolve(res.statusCode !== undefined);
          });
          req.on('error', () => resolve(false));
        });
      },
      { timeoutMs: 30_000, intervalMs: 200, stopOn: (e) => /exited/.test(String(e)) },
    );
  }

  /** SIGKILL; `revive` starts it again on the same port and data. */
  kill() {
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }

  /** Kills it and removes its data. */
  stop() {
    this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
