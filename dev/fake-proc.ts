// A simulated node's /proc for the node agent (kwok nodes have no processes of their
// own): <pid>/stat and <pid>/cmdline files in the kernel's format. The playground gives
// each agent one with a "containerd" in it; removing that entry breaks the node.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function writeFakeProcess(root: string, pid: number, comm: string, o: { state?: string; argv?: string[]; start?: number; nspid?: number[] } = {}) {
  const dir = path.join(root, String(pid));
  mkdirSync(dir, { recursive: true });
  const stat = `${pid} (${comm}) ${o.state ?? 'S'} 1 ${pid} ${pid} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 ${o.start ?? 1000} 1000000 200 18446744073709551615`;
  writeFileSync(path.join(dir, 'stat'), stat);
  writeFileSync(path.join(dir, 'cmdline'), o.argv ? `${o.argv.join('\0')}\0` : '');
  // NSpid: the pid in each nested PID namespace (one entry: the host's own).
  writeFileSync(path.join(dir, 'status'), `Name:\t${comm}\nState:\t${o.state ?? 'S'}\nPid:\t${pid}\nNSpid:\t${(o.nspid ?? [pid]).join('\t')}\n`);
}
