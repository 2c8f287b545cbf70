// A real JVM (OpenJDK 17) running tests/fixtures/StuckApp.java: one thread stuck on a monitor.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../fixtures/StuckApp.java', import.meta.url));
const supervisor = fileURLToPath(new URL('../../shim/supervise', import.meta.url));

/**
 * `supervise`: start it as the webhook would, under shim/supervise (run by `shell`), with
 * `env` (SICKBAY_DIR, SICKBAY_JFR_OPTIONS, a user's JAVA_TOOL_OPTIONS...).
 */
export async function startStuckJvm(o: { supervise?: string[]; env?: Record<string, string> } = {}): Promise<{ pid: number; latestPid(): number; stop(): void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-jvm-'));
  try {
    execFileSync('javac', ['-d', dir, source], { stdio: 'pipe' });
  } catch (err) {
    assert.fail(`javac failed (is OpenJDK 17 installed? apt-get install openjdk-17-jdk-headless): ${String(err)}`);
  }
  const java = ['java', '-Xmx64m', '-cp', dir, 'StuckApp'];
  const argv = o.supervise ? [...o.supervise, supervisor, '--name', 'app', '--', ...java] : java;
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...o.env }, detached: !!o.supervise });
  let out = '';
  const latestPid = () => Number([...out.matchAll(/ready (\d+)/g)].pop()?.[1] ?? 0);
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      // The last one: a supervised app restarted prints it again.
      const m = [...out.matchAll(/ready (\d+)/g)].pop();
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`the JVM exited early (${code})`)));
  });
  return {
    pid,
    latestPid,
    stop() {
      // A supervisor's group: it and the JVM it started.
      if (o.supervise) process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
