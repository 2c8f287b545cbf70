// The node agent's memory, as the image runs it (compiled dist/cli.js on the image's
// Node 24), with its checks every second and a heartbeat every BENCH_HEARTBEAT seconds
// (default 1: ten times the chart's 10 s, so an hour's writes come in BENCH_MINUTES × 10).
// BENCH_AGENTS agents (default 2, each its own node) of this checkout's build; with
// BENCH_OTHER_DIST=<another checkout>/dist/cli.js[,<another>...], as many of each of those
// builds beside them, alternated, in the same run; `<cli.js>|<node flags>` runs that build
// with those flags (`dist/cli.js|--max-semi-space-size=1`: this build, V8 tuned). Sampled every BENCH_SAMPLE seconds (30) for BENCH_MINUTES (10): resident
// (VmRSS), anonymous (RssAnon: what only this process holds) and file-backed (RssFile:
// mostly the Node binary's pages, shared by every Node process on the node).
//   npm run bench:agent
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { ensureDist } from '../dev/build.js';
import { installNodeHealthCrd } from '../dev/local-install.js';
import { nodeRuntime } from '../dev/images.js';
import { startCluster } from '../tests/support/cluster.js';
import { median } from './support.js';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 2);
const MINUTES = Number(process.env.BENCH_MINUTES ?? 10);
const SAMPLE_S = Number(process.env.BENCH_SAMPLE ?? 30);
const HEARTBEAT_S = Number(process.env.BENCH_HEARTBEAT ?? 1);
const repo = fileURLToPath(new URL('..', import.meta.url));

function memory(pid: number) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') };
}

await ensureDist();
const node = await nodeRuntime((m) => console.log(m));
const builds: Array<{ name: string; cli: string; flags: string[] }> = [{ name: 'this build', cli: path.join(repo, 'dist/cli.js'), flags: [] }];
for (const other of (process.env.BENCH_OTHER_DIST ?? '').split(',').filter(Boolean)) {
  const [cli, flags] = other.split('|');
  builds.push({ name: `other (${other})`, cli: path.resolve(repo, cli!), flags: (flags ?? '').split(' ').filter(Boolean) });
}

const t = await startCluster({ nodes: AGENTS * builds.length, log: () => undefined });
const agents: Array<{ build: string; node: string; pid: number; samples: ReturnType<typeof memory>[]; kill(): void }> = [];
try {
  await installNodeHealthCrd(t.kc);
  const kubeconfig = t.cp.kubeconfigPath;
  let n = 0;
  // Alternated: this build's agent, the other's, this build's...
  for (let i = 0; i < AGENTS; i++) {
    for (const b of builds) {
      const nodeName = `kwok-node-${n++}`;
      const child = spawn(node, [...b.flags, b.cli, 'agent', '--node-name', nodeName, '--kubeconfig', kubeconfig], {
        env: { PATH: process.env.PATH, SICKBAY_LOG_LEVEL: 'warn', SICKBAY_AGENT_PORT: '0', SICKBAY_AGENT_CHECKS: 'conditions,network,processes', SICKBAY_HEARTBEAT_INTERVAL: `${HEARTBEAT_S}s`, SICKBAY_AGENT_PROCESSES: 'auto' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      agents.push({ build: b.name, node: nodeName, pid: child.pid!, samples: [], kill: () => child.kill('SIGKILL') });
    }
  }
  console.log(`${agents.length} agents on ${node}; sampling every ${SAMPLE_S} s for ${MINUTES} min (heartbeat every ${HEARTBEAT_S} s)`);
  console.log(`| minute | ${agents.map((a) => `${a.build}, ${a.node}: resident / anonymous MiB`).join(' | ')} |`);
  console.log(`|---|${agents.map(() => '---').join('|')}|`);
  const end = Date.now() + MINUTES * 60_000;
  await new Promise((r) => setTimeout(r, 5_000));
  while (Date.now() < end) {
    for (const a of agents) a.samples.push(memory(a.pid));
    const minute = ((MINUTES * 60_000 - (end - Date.now())) / 60_000).toFixed(1);
    console.log(`| ${minute} | ${agents.map((a) => `${a.samples.at(-1)!.rss.toFixed(1)} / ${a.samples.at(-1)!.anon.toFixed(1)}`).join(' | ')} |`);
    await new Promise((r) => setTimeout(r, SAMPLE_S * 1000));
  }
  const healths = (await t.kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths' })) as { items: Array<{ metadata: { name: string }; status?: { heartbeatTime?: string } }> };
  console.log('\nper build (medians over the samples of its agents; first and last sample for drift):');
  for (const b of builds) {
    const mine = agents.filter((a) => a.build === b.name);
    const all = mine.flatMap((a) => a.samples);
    const beats = healths.items.filter((h) => mine.some((a) => a.node === h.metadata.name) && h.status?.heartbeatTime && Date.now() - Date.parse(h.status.heartbeatTime) < 10_000).length;
    console.log(
      `  ${b.name}: resident ${median(all.map((s) => s.rss)).toFixed(1)} MiB, anonymous ${median(all.map((s) => s.anon)).toFixed(1)} MiB, file-backed ${median(all.map((s) => s.file)).toFixed(1)} MiB; ` +
        `first → last resident ${mine.map((a) => `${a.samples[0]!.rss.toFixed(1)} → ${a.samples.at(-1)!.rss.toFixed(1)}`).join(', ')}; heartbeating at the end ${beats} of ${mine.length}`,
    );
  }
} finally {
  for (const a of agents) a.kill();
  await t.stop();
}
