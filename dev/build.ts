// dist/ as `npm run build` makes it, built only when a source is newer than it: the image,
// the fault suite's cache row and the agent benchmark each run the compiled process, and
// one build (~25 s on 2 cores) serves them all in a run.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const repo = fileURLToPath(new URL('../', import.meta.url));

/** The newest modification time among what the build reads (src/, package.json, the tsconfigs). */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        walk(p);
      } else newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(path.join(repo, 'src'));
  for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) newest = Math.max(newest, statSync(path.join(repo, f)).mtimeMs);
  return newest;
}

/** Builds dist/ unless it is newer than every source; resolves to whether it built. */
export async function ensureDist(): Promise<boolean> {
  const cli = path.join(repo, 'dist', 'cli.js');
  if (existsSync(cli) && statSync(cli).mtimeMs >= newestSource()) return false;
  await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: repo, maxBuffer: 16 << 20 });
  return true;
}
