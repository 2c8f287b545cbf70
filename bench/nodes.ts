// BENCH_NODES nodes (default 1000), each with a NodeHealth heartbeating every
// BENCH_INTERVAL seconds (10), spread evenly, written by this process as the agents would.
// `sickbay serve` runs as its own process with the node controller. Measured:
//   - sickbay's CPU (from /proc) over BENCH_WINDOW seconds (60) idle, then over the same
//     window with the heartbeats flowing, side by side in one run; its resident memory;
//   - BENCH_STOP (50) nodes stop heartbeating, one every 500 ms: for each, the time from
//     its deadline (last heartbeat written + 3 intervals) to the taint seen on a watch.
//   npm run bench:nodes
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { installNodeHealthCrd } from '../dev/local-install.js';
import { withConnectionReuse } from '../src/kube/connection-reuse.js';
import { waitFor } from '../src/util/wait.js';
import { startCluster } from '../tests/support/cluster.js';
import { spawnSickbay } from '../tests/support/sickbay.js';
import { cpuSeconds, pct, rssMiB } from './support.js';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const INTERVAL_S = Number(process.env.BENCH_INTERVAL ?? 10);
const WINDOW_S = Number(process.env.BENCH_WINDOW ?? 60);
const STOP = Number(process.env.BENCH_STOP ?? 50);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const started = Date.now();
// The nodes are plain Node objects, not kwok's: kwok heartbeating 1,000 nodes of its own
// saturates this 2-core machine's API server, and the node controller only needs the
// Node objects and their NodeHealths.
const t = await startCluster({ nodes: 1, log: () => undefined });
try {
  const nodes = Array.from({ length: NODES }, (_, i) => `bench-node-${i}`);
  for (let i = 0; i < nodes.length; i += 50) {
    await Promise.all(nodes.slice(i, i + 50).map((name) => t.core.createNode({ body: { metadata: { name, labels: { 'kubernetes.io/hostname': name, type: 'bench' } } } })));
  }
  console.log(`${NODES} nodes created in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  await installNodeHealthCrd(t.kc);
  // One keep-alive agent (client-node 1.4 makes a new TLS connection per typed call otherwise).
  const custom = withConnectionReuse(t.kc).makeApiClient(CustomObjectsApi);
  const target = { group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths' };
  const lastWritten = new Map<string, number>();
  const stopped = new Set<string>();
  const beat = async (name: string) => {
    const now = new Date();
    await custom.patchClusterCustomObjectStatus(
      { ...target, name, body: { status: { healthy: true, failing: '', heartbeatTime: now.toISOString(), heartbeatIntervalSeconds: INTERVAL_S, since: new Date(started).toISOString(), checks: [] } } },
      mergePatch,
    );
    lastWritten.set(name, Date.now());
  };
  for (let i = 0; i < nodes.length; i += 50) {
    await Promise.all(nodes.slice(i, i + 50).map((name) => custom.createClusterCustomObject({ ...target, body: { apiVersion: 'sickbay.io/v1alpha1', kind: 'NodeHealth', metadata: { name }, spec: { nodeName: name } } }).then(() => beat(name))));
  }

  const sickbay = await spawnSickbay(t, 'bench-nodes', { SICKBAY_CONTROLLERS: 'true', SICKBAY_DIAGNOSTICS: 'false', SICKBAY_LOG_LEVEL: 'warn' });
    await sleep(10_000); // caches synced, leader elected
  const measure = async (what: string) => {
    const c0 = cpuSeconds(sickbay.pid);
    const w0 = Date.now();
    await sleep(WINDOW_S * 1000);
    const share = (cpuSeconds(sickbay.pid) - c0) / ((Date.now() - w0) / 1000);
    console.log(`  ${what}: sickbay CPU ${(share * 100).toFixed(1)}% of a core, resident ${rssMiB(sickbay.pid).toFixed(0)} MiB`);
    return share;
  };
  console.log(`sickbay (leader, node controller on) over ${WINDOW_S} s:`);
  // The idle window: NodeHealths exist but none changes (and the controller's deadlines
  // are pushed out by a 1-hour interval so nothing goes stale).
  await Promise.all(nodes.map((n) => custom.patchClusterCustomObjectStatus({ ...target, name: n, body: { status: { heartbeatIntervalSeconds: 3600 } } }, mergePatch)));
  const idle = await measure('no heartbeats');

  // Heartbeats: every node every INTERVAL_S, evenly spread, as many in flight as needed.
  let running = true;
  let writes = 0;
  let errors = 0;
  let skipped = 0;
  const inFlight = new Set<string>();
  const beatsFrom = Date.now();
  // Every 100 ms, the nodes whose turn has come (node i beats at i * interval/N within each interval).
  const spreadMs = (INTERVAL_S * 1000) / nodes.length;
  const beating = (async () => {
    const t0 = Date.now();
    let k = 0;
    while (running) {
      const dueUpTo = Math.floor((Date.now() - t0) / spreadMs);
      for (; k <= dueUpTo; k++) {
        const name = nodes[k % nodes.length]!;
        // Like an agent: no second write for a node while its last one is in flight.
        if (stopped.has(name)) continue;
        if (inFlight.has(name)) {
          skipped++;
          continue;
        }
        inFlight.add(name);
        void beat(name)
          .then(
            () => writes++,
            () => errors++,
          )
          .finally(() => inFlight.delete(name));
      }
      await sleep(100);
    }
  })();
  await sleep(INTERVAL_S * 1000); // every node has beaten once at the new interval
  const busy = await measure(`${nodes.length} heartbeats every ${INTERVAL_S} s (${(nodes.length / INTERVAL_S).toFixed(0)}/s)`);
  console.log(`  CPU ratio heartbeats/idle: ${(busy / idle).toFixed(1)}; heartbeats written ${writes} (${(writes / ((Date.now() - beatsFrom) / 1000)).toFixed(0)}/s), failed ${errors}, skipped while the node's last write was in flight ${skipped}`);

  // Stop some nodes' heartbeats, one every 500 ms; time deadline -> taint.
  const tainted = new Map<string, number>();
  const watch = await new Watch(t.kc).watch('/api/v1/nodes', {}, (_type: string, n: { metadata?: { name?: string }; spec?: { taints?: Array<{ key: string }> } }) => {
    const name = n.metadata?.name ?? '';
    if (!tainted.has(name) && n.spec?.taints?.some((x) => x.key === 'sickbay.io/isolated')) tainted.set(name, Date.now());
  }, () => undefined);
  const victims = nodes.filter((_, i) => i % Math.floor(nodes.length / STOP) === 0).slice(0, STOP);
  const suppressedBefore = (await fetchMetric(sickbay, 'sickbay_node_isolation_skips_total')) ?? '';
  for (const v of victims) {
    stopped.add(v);
    await sleep(500);
  }
  await waitFor('every stopped node tainted', () => victims.every((v) => tainted.has(v)), { timeoutMs: 5 * INTERVAL_S * 1000 + 60_000, intervalMs: 200 }).catch(async (err) => {
    console.log(`  ${(err as Error).message}: ${victims.filter((v) => tainted.has(v)).length} of ${victims.length} tainted; ${await fetchMetric(sickbay, 'sickbay_node_isolation')}`);
    console.log(sickbay.output().split('\n').slice(-20).join('\n'));
    throw err;
  });
  running = false;
  await beating;
  watch.abort();
  const late = victims.map((v) => tainted.get(v)! - (lastWritten.get(v)! + 3 * INTERVAL_S * 1000));
  console.log(`${STOP} nodes stopped heartbeating (one every 500 ms); deadline (last heartbeat written + 3 intervals) -> taint seen:`);
  console.log(`  p50 ${pct(late, 50)} ms, p99 ${pct(late, 99)} ms, max ${Math.max(...late)} ms, min ${Math.min(...late)} ms`);
  const others = [...tainted.keys()].filter((n) => !victims.includes(n));
  console.log(`  nodes tainted that kept heartbeating: ${others.length}`);
  const suppressedAfter = (await fetchMetric(sickbay, 'sickbay_node_isolation_skips_total')) ?? '';
  if (suppressedAfter !== suppressedBefore) console.log(`  the stale-majority guard fired: ${suppressedAfter}`);
  console.log(`  sickbay resident memory at the end: ${rssMiB(sickbay.pid).toFixed(0)} MiB`);
  sickbay.kill('SIGTERM');
  await sickbay.exited;
} finally {
  await t.stop();
}

async function fetchMetric(sb: { port: number; caPem: string }, name: string): Promise<string | undefined> {
  const { request } = await import('../tests/support/https.js');
  const res = await request(sb.port, sb.caPem, '/metrics', { method: 'GET' });
  return res.body.split('\n').filter((l) => l.startsWith(name)).join('; ') || undefined;
}
