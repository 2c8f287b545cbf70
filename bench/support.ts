// What the benchmarks share: percentiles, a process's memory and CPU from /proc, and
// reading Prometheus histograms and gauges out of a scrape.
import { readFileSync } from 'node:fs';
import { type KubeConfig, Watch } from '@kubernetes/client-node';

/** The p-th percentile (nearest rank) of xs. */
export const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
export const median = (xs: number[]) => pct(xs, 50);

/** Resident memory of a process, in MiB. */
export const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
}

/** Cumulative bucket counts of a Prometheus histogram, summed over the series `match` selects. */
export function buckets(text: string, metric: string, match: (labels: string) => boolean = () => true): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${metric}_bucket\\{(.*)\\} (\\S+)$`).exec(line);
    if (!m || !match(m[1]!)) continue;
    const le = /(?:^|,)le="([^"]+)"/.exec(m[1]!)![1]!;
    const bound = le === '+Inf' ? Infinity : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + Number(m[2]));
  }
  return out;
}

/** histogram_quantile as Prometheus computes it: linear within the bucket the rank falls in. */
export function quantile(after: Map<number, number>, before: Map<number, number>, q: number): { value: number; count: number; bucket: string } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total === 0) return { value: NaN, count: 0, bucket: '-' };
  const rank = q * total;
  let i = counts.findIndex((c) => c >= rank);
  if (i < 0) i = counts.length - 1;
  const lower = i === 0 ? 0 : bounds[i - 1]!;
  const upper = bounds[i]!;
  const below = i === 0 ? 0 : counts[i - 1]!;
  const value = upper === Infinity ? lower : lower + ((upper - lower) * (rank - below)) / Math.max(1, counts[i]! - below);
  return { value, count: total, bucket: `${lower}-${upper} s` };
}

/**
 * How many observations of a histogram fell at or under each of `bounds` (seconds), as
 * "≤0.5 s 40/50"; with `before`, only those made after that scrape.
 */
export function underBounds(after: Map<number, number>, before: Map<number, number>, bounds: number[]): string {
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  return bounds.filter((b) => after.has(b)).map((b) => `≤${b} s ${after.get(b)! - (before.get(b) ?? 0)}/${total}`).join(', ');
}

/** An unlabelled sample's value in a scrape (NaN if absent). */
export const sample = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

/** A watch that goes on from the last version it saw when the API server ends it. */
export async function keepWatching<T extends { metadata?: { resourceVersion?: string } }>(kc: KubeConfig, apiPath: string, rv: string | undefined, on: (phase: string, obj: T) => void, labelSelector?: string) {
  let stopped = false;
  let req: AbortController | undefined;
  const start = async (): Promise<void> => {
    req = await new Watch(kc).watch(apiPath, { ...(labelSelector ? { labelSelector } : {}), ...(rv ? { resourceVersion: rv } : {}) }, (phase: string, obj: T) => {
      rv = obj.metadata?.resourceVersion ?? rv;
      on(phase, obj);
    }, () => {
      if (!stopped) void start().catch((err) => console.log(`the watch of ${apiPath} could not resume: ${String(err)}`));
    });
  };
  await start();
  return () => {
    stopped = true;
    req?.abort();
  };
}
