// helm, built from the Go module proxy by hack/build-control-plane.sh into the cache
// (or $SICKBAY_HELM, or helm on PATH). Used by the chart's tests and the playground.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from './binaries.js';

export const HELM_VERSION = process.env.SICKBAY_HELM_VERSION ?? 'v3.22.0';
export const chartDir = fileURLToPath(new URL('../chart', import.meta.url));

/** The helm binary, or undefined when there is none. */
export function findHelm(): string | undefined {
  const candidates = [process.env.SICKBAY_HELM, path.join(cacheDir(), `helm-${HELM_VERSION}`, 'helm'), ...(process.env.PATH ?? '').split(':').map((d) => path.join(d, 'helm'))];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

export const HELM_MISSING = `helm not found: run \`bash hack/build-control-plane.sh helm\` (builds ${HELM_VERSION} from the Go module proxy into ${cacheDir()}) or set SICKBAY_HELM`;
