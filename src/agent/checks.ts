// What the node agent checks, as rules over what it reads (agent/proc.ts reads /proc):
// watched processes in the process table, the Node's conditions, and the rule that turns
// single results into a check's state (fails after N failures in a row, recovers after
// one success).
import path from 'node:path';
import type { V1Node } from '@kubernetes/client-node';
import type { ProcessSpec } from '../core/agent-settings.js';
import { type ProcessInfo, type ProcReader, type ProcessTable, procReader } from './proc.js';

export interface CheckResult {
  ok: boolean;
  message: string;
}

// ---------------------------------------------------------------- processes

/**
 * Checks watched processes against process tables, remembering what it has seen.
 * A process matches a name by its kernel name (truncated to 15 characters, as the kernel
 * does), by the file name of its argv[0], or by an argument `-<name>` (calico-node runs
 * felix as `calico-node -felix`). Command lines are read only when the kernel name does
 * not already answer, and cached per process. A host-scoped spec counts only processes
 * in the /proc root's own PID namespace (where the kernel does not say, it counts them).
 */
export class ProcessWatch {
  private readonly seen = new Set<string>();
  private argvCache = new Map<string, string[]>();

  constructor(
    private readonly root: string,
    private readonly specs: ProcessSpec[],
    private readonly proc: ProcReader = procReader(root),
  ) {}

  check(): CheckResult {
    let table: ProcessTable;
    try {
      table = this.proc.table();
    } catch (err) {
      return { ok: false, message: `cannot read ${this.root}: ${(err as Error).message}` };
    }
    const nextCache = new Map<string, string[]>();
    const argvOf = (p: ProcessInfo) => {
      const key = `${p.pid}:${p.startTime}`;
      let argv = nextCache.get(key) ?? this.argvCache.get(key);
      if (!argv) argv = this.proc.argv(p.pid);
      nextCache.set(key, argv);
      return argv;
    };
    const problems: string[] = [];
    const fine: string[] = [];
    for (const spec of this.specs) {
      const shorts = spec.names.map((n) => n.slice(0, 15));
      let matches = table.processes.filter((p) => shorts.includes(p.comm));
      if (matches.length === 0) {
        matches = table.processes.filter((p) => {
          if (p.state === 'Z' || p.state === 'X') return false; // a zombie has no command line
          const argv = argvOf(p);
          return argv.length > 0 && spec.names.some((n) => path.basename(argv[0]!) === n || argv.slice(1).includes(`-${n}`));
        });
      }
      let inContainers = 0;
      if (spec.scope === 'host') {
        const all = matches.length;
        matches = matches.filter((p) => (this.proc.depth(p.pid) ?? 1) <= 1);
        inContainers = all - matches.length;
      }
      const alive = matches.filter((p) => p.state !== 'Z' && p.state !== 'X');
      if (alive.length > 0) {
        this.seen.add(spec.name);
        fine.push(spec.name);
      } else if (matches.length > 0) {
        this.seen.add(spec.name);
        problems.push(`${spec.name} is a zombie (pid ${matches.map((p) => p.pid).join(', ')})`);
      } else if (!spec.optional || this.seen.has(spec.name)) {
        problems.push(`${spec.name} is not running${inContainers ? ` (${inContainers} process(es) of that name run in a container, which does not count)` : ''}`);
      }
    }
    this.argvCache = nextCache;
    if (problems.length) return { ok: false, message: problems.join('; ') };
    return { ok: true, message: fine.length ? `running: ${fine.join(', ')}` : 'no watched process on this node' };
  }
}

// ---------------------------------------------------------------- node conditions

const PRESSURE = ['MemoryPressure', 'DiskPressure', 'PIDPressure'];

/**
 * The Node's pressure conditions. Pressure is the kubelet's to remedy: it evicts the pod
 * that fills the disk or the memory, and any tenant can cause it (a pod that tolerates
 * every taint and fills an emptyDir). So pressure alone does not fail the check: it
 * fails only once a condition has lasted `pressureAfterMs` (past the kubelet's own
 * eviction, which did not help), and never with 0, the default. The condition's time is
 * written by the kubelet on this same node, on the agent's own clock.
 */
export function conditionsCheck(node: V1Node | undefined, now = Date.now(), pressureAfterMs = 0): CheckResult {
  if (!node) return { ok: false, message: 'the Node object is not there' };
  const on = (node.status?.conditions ?? []).filter((c) => PRESSURE.includes(c.type) && c.status === 'True');
  const describe = (c: (typeof on)[number]) => `${c.type}${c.message ? ` (${c.message})` : ''}`;
  const since = (c: (typeof on)[number]) => Date.parse(String(c.lastTransitionTime ?? '')) || now;
  const sustained = pressureAfterMs > 0 ? on.filter((c) => now - since(c) >= pressureAfterMs) : [];
  if (sustained.length) return { ok: false, message: `${sustained.map(describe).join('; ')} for over ${Math.round(pressureAfterMs / 1000)}s, past the kubelet's evictions` };
  if (on.length) return { ok: true, message: `${on.map(describe).join('; ')}: the kubelet's evictions handle pressure; not a node fault${pressureAfterMs > 0 ? ` unless it lasts ${Math.round(pressureAfterMs / 1000)}s` : ''}` };
  return { ok: true, message: 'no memory, disk or PID pressure' };
}

// ---------------------------------------------------------------- state

export interface CheckState extends CheckResult {
  name: string;
  consecutiveFailures: number;
  lastTransitionTime: Date;
}

/** One check's state: fails after `threshold` failures in a row, recovers after one success. */
export class CheckTracker {
  readonly state: CheckState;

  constructor(
    name: string,
    private readonly threshold: number,
    now = new Date(),
  ) {
    this.state = { name, ok: true, message: 'not checked yet', consecutiveFailures: 0, lastTransitionTime: now };
  }

  /** Records one result; true when the check's state (ok or failing) changed. */
  record(result: CheckResult, now = new Date()): boolean {
    const s = this.state;
    const wasOk = s.ok;
    if (result.ok) {
      s.consecutiveFailures = 0;
      s.ok = true;
      s.message = result.message;
    } else {
      s.consecutiveFailures++;
      if (s.consecutiveFailures >= this.threshold) s.ok = false;
      s.message = s.ok ? `${result.message} (${s.consecutiveFailures} of ${this.threshold} failures)` : result.message;
    }
    if (s.ok !== wasOk) s.lastTransitionTime = now;
    return s.ok !== wasOk;
  }
}
