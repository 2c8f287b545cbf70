// A real JVM (OpenJDK 17) running tests/fixtures/StuckApp.java: one thread stuck on a monitor.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../fixtures/StuckApp.java', import.meta.url));

export async function startStuckJvm(): Promise<{ pid: number; stop(): void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-jvm-'));
  try {
    execFileSync('javac', ['-d', dir, source], { stdio: 'pipe' });
  } catch (err) {
    assert.fail(`javac failed (is OpenJDK 17 installed? apt-get install openjdk-17-jdk-headless): ${String(err)}`);
  }
  const child: ChildProcess = spawn('java', ['-Xmx64m', '-cp', dir, 'StuckApp'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`the JVM exited early (${code})`)));
  });
  return {
    pid,
    stop() {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
