// What the flight recorder costs a JVM workload: the real-node workload (hack/workload,
// OpenJDK 17, as its image runs it) serving GET /work (sorting 20,000 random numbers a
// request) with and without the recording the webhook turns on (`sickbay.io/flight-recorder`:
// the same JAVA_TOOL_OPTIONS, its repository in a temporary folder), alternated round by
// round in one run (the machine is shared and noisy: medians and the ratio of side-by-side
// rounds, not absolute figures).
//   npm run bench:flight-recorder      (BENCH_ROUNDS (5), BENCH_SECONDS (10) change the run)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { WORKLOAD_COMMAND } from '../dev/images.js';
import { jfrMaxSizeMiB, jfrOptions } from '../src/webhook/mutate-pod.js';
import { waitFor } from '../src/util/wait.js';
import { cpuSeconds, median, rssMiB } from './support.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-bench-jfr-'));
const app = path.join(dir, 'app');
execFileSync('javac', ['-proc:none', '-d', app, '-cp', WORKLOAD_COMMAND[4]!.split(':').slice(1).join(':'), path.join(import.meta.dirname, '../hack/workload/Workload.java')]);
// The image's command, its /app on this machine's disk.
const command = WORKLOAD_COMMAND.map((a) => a.replace(/^\/app:/, `${app}:`));

interface Round { rps: number; p99: number; cpuPerKReq: number; rss: number }
const results: Record<'off' | 'on', Round[]> = { off: [], on: [] };

async function measure(variant: 'off' | 'on', port: number): Promise<Round> {
  const repo = path.join(dir, `repo-${port}`);
  const env = { ...process.env, PORT: String(port), ...(variant === 'on' ? { JAVA_TOOL_OPTIONS: jfrOptions(repo, jfrMaxSizeMiB(256 * 1024)) } : {}) };
  const jvm: ChildProcess = spawn(command[0]!, command.slice(1), { env, stdio: 'ignore' });
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitFor('the workload to answer', async () => (await fetch(`${url}/ready`).catch(() => undefined))?.ok, { timeoutMs: 30_000, intervalMs: 200 });
    await autocannon({ url: `${url}/work`, connections: 8, duration: 3 }); // warm-up: the JIT, the recorder's first chunk
    const cpu0 = cpuSeconds(jvm.pid!);
    const r = await autocannon({ url: `${url}/work`, connections: 8, duration: seconds });
    const cpu = cpuSeconds(jvm.pid!) - cpu0;
    return { rps: r.requests.average, p99: r.latency.p99, cpuPerKReq: (cpu / Math.max(1, r.requests.total)) * 1000, rss: rssMiB(jvm.pid!) };
  } finally {
    jvm.kill('SIGKILL');
    await new Promise((r) => jvm.once('exit', r));
  }
}

try {
  let port = 18_080;
  for (let i = 0; i < rounds; i++) {
    // The order alternates, so neither variant always runs on a warmer machine.
    for (const v of i % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      const r = await measure(v, port++);
      results[v].push(r);
      console.log(`round ${i + 1} ${v.padEnd(3)}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99} ms, ${r.cpuPerKReq.toFixed(2)} CPU s per 1,000 requests, RSS ${r.rss.toFixed(0)} MiB`);
    }
  }
  const row = (v: 'off' | 'on') => {
    const rs = results[v];
    return `| ${v === 'on' ? 'recorder on' : 'recorder off'} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${median(rs.map((r) => r.p99))} ms | ${median(rs.map((r) => r.cpuPerKReq)).toFixed(2)} s | ${median(rs.map((r) => r.rss)).toFixed(0)} MiB |`;
  };
  console.log(`\n${rounds} rounds x ${seconds} s, 8 connections; medians over rounds\n`);
  console.log('| workload | req/s | p99 | CPU per 1,000 requests | RSS |');
  console.log('|---|---|---|---|---|');
  console.log(row('off'));
  console.log(row('on'));
  const ratios = results.on.map((r, i) => r.rps / results.off[i]!.rps);
  console.log(`\nthroughput on/off, round by round: ${ratios.map((x) => x.toFixed(3)).join(', ')}; median ${median(ratios).toFixed(3)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
