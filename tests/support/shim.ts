// The shim as an init container installs it: the scripts, a static busybox and sigexec (what the
// image carries next to them) copied into a folder, then `install` run into the target.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { shimHelper } from '../../dev/shim-helper.js';

export const shimSource = fileURLToPath(new URL('../../shim/', import.meta.url));

export function installShim(target: string): void {
  const image = mkdtempSync(path.join(tmpdir(), 'sickbay-shim-image-'));
  try {
    cpSync(shimSource, image, { recursive: true });
    copyFileSync('/bin/busybox', path.join(image, 'busybox'));
    copyFileSync(shimHelper(), path.join(image, 'sigexec'));
    execFileSync('sh', [path.join(image, 'install'), target]);
  } finally {
    rmSync(image, { recursive: true, force: true });
  }
}
