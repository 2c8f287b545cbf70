// The shim's one compiled piece, `sigexec` (shim/sigexec.c), built static on this machine
// as the Dockerfile's helper stage builds it on Alpine: for the local image, the tests
// and the playground. Cached by the hash of its source in the sickbay cache.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from './binaries.js';

const SOURCE = fileURLToPath(new URL('../shim/sigexec.c', import.meta.url));

/** The path of the static sigexec for shim/sigexec.c as it is now; built on first use. */
export function shimHelper(): string {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const out = path.join(cacheDir(), 'shim', `sigexec-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}`;
  try {
    execFileSync('gcc', ['-static', '-Os', '-s', '-o', tmp, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('cannot build the shim helper shim/sigexec.c: no gcc (apt-get install gcc libc6-dev)');
    throw new Error(`cannot build the shim helper shim/sigexec.c (a static build needs apt-get install gcc libc6-dev): ${e.stderr?.toString().trim() || e.message}`);
  }
  renameSync(tmp, out);
  return out;
}
