// `npm run cluster:up` / `npm run cluster:down`: the local control plane alone, left
// running in the background, kubeconfig at $SICKBAY_DEV_DIR/kubeconfig (.sickbay-dev).
// `npm run cluster:up -- --real-node` (or SICKBAY_REAL_NODE=1) adds the real node.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { LocalControlPlane, stopDetached } from './control-plane.js';

const devDir = path.resolve(process.env.SICKBAY_DEV_DIR ?? '.sickbay-dev');
const clusterDir = path.join(devDir, 'cluster');
const kubeconfig = path.join(devDir, 'kubeconfig');

async function main(cmd: string | undefined) {
  if (cmd === 'up') {
    if (existsSync(path.join(clusterDir, 'control-plane.json'))) {
      console.error(`a control plane is already recorded in ${clusterDir}; run \`npm run cluster:down\` first`);
      process.exit(1);
    }
    mkdirSync(clusterDir, { recursive: true });
    const nodes = Number(process.env.SICKBAY_NODES ?? 3);
    const realNode = process.argv.includes('--real-node') || process.env.SICKBAY_REAL_NODE === '1';
    const cp = await LocalControlPlane.start({ dir: clusterDir, detached: true, nodes, kubeconfigPath: kubeconfig, realNode });
    console.log(`control plane up: ${cp.server} (${nodes} kwok node(s)${realNode ? ' and the real node sickbay-real-node' : ''})\n  export KUBECONFIG=${kubeconfig}\n  kubectl get nodes\nstop it with: npm run cluster:down`);
    process.exit(0);
  } else if (cmd === 'down') {
    const stopped = await stopDetached(clusterDir, (l) => console.log(l));
    console.log(stopped ? `control plane in ${clusterDir} stopped` : `no control plane recorded in ${clusterDir}`);
  } else {
    console.error('usage: cluster-cli.ts up|down');
    process.exit(2);
  }
}

main(process.argv[2]).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
