// /healthz asked the way a kubelet's probe asks it, from a process of its own, and a
// process's resident memory: what the fault suite's hostile-load rows measure.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type Figures, median } from './chaos.js';

// The prober runs in a process of its own, so the load generator's work (encrypting
// megabytes of bodies) does not count as sickbay's latency.
const PROBER = `
const https = require('node:https');
const [port, every] = process.argv.slice(1).map(Number);
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
const times = [];
let failures = 0;
let running = true;
process.stdin.on('end', () => (running = false)).resume();
(async () => {
  while (running) {
    const t0 = performance.now();
    const ok = await new Promise((resolve) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/healthz', ca: process.env.PROBE_CA, servername: 'localhost', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) times.push(performance.now() - t0);
    else failures++;
    await new Promise((r) => setTimeout(r, every));
  }
  agent.destroy();
  process.stdout.write(JSON.stringify({ times, failures }));
})();
`;

/**
 * /healthz asked every `everyMs` over a connection of its own (what a kubelet's probe
 * sees) from another process, and sickbay's resident memory; stop() records the figures.
 */
export function watchHealth(proc: { port: number; caPem: string; pid: number }, everyMs: number) {
  const prober = spawn(process.execPath, ['-e', PROBER, String(proc.port), String(everyMs)], { env: { ...process.env, PROBE_CA: proc.caPem }, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  prober.stdout!.on('data', (d) => (out += d));
  const done = new Promise((resolve) => prober.on('exit', resolve));
  let rssMax = 0;
  const rss = setInterval(() => (rssMax = Math.max(rssMax, rssOf(proc.pid))), 50);
  return {
    async stop(fig: Figures) {
      clearInterval(rss);
      prober.stdin!.end();
      await done;
      const { times, failures } = JSON.parse(out) as { times: number[]; failures: number };
      const sorted = [...times].sort((a, b) => a - b);
      const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? NaN;
      fig('/healthz', `${times.length} probes`);
      fig('median', `${median(times).toFixed(1)} ms`);
      fig('p99', `${p99.toFixed(1)} ms`);
      fig('max', `${(sorted.at(-1) ?? NaN).toFixed(1)} ms`);
      fig('resident max', `${(rssMax / 2 ** 20).toFixed(0)} MiB`);
      return { p99, rssMax, failures: failures ? [`/healthz failed ${failures} times`] : [] };
    },
  };
}

/** Resident bytes of a process (0 once it is gone). */
export function rssOf(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

