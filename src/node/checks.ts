// What the node agent checks, as plain functions over what it reads: the process table
// under a /proc root, the Node's conditions, and the rule that turns single results
// into a check's state (fails after N failures in a row, recovers after one success).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { V1Node } from '@kubernetes/client-node';

export const CHECK_NAMES = ['kubelet', 'conditions', 'network', 'processes'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface CheckResult {
  ok: boolean;
  message: string;
}

// ---------------------------------------------------------------- processes

export interface ProcessSpec {
  /** How it is reported: the spec as written, without its markers ("containerd|docker-containerd"). */
  name: string;
  /** Any of these processes will do. */
  names: string[];
  /** Checked only once seen on this node ("dockerd?" on a containerd-only node). */
  optional: boolean;
  /**
   * Where it must run: `host`, the PID namespace of the /proc root's own processes (a
   * container running a process named containerd does not count), or `pod`, any (Calico's
   * processes run in the calico-node pod).
   */
  scope: 'host' | 'pod';
}

/**
 * "dockerd?,containerd|docker-containerd,kubelet,felix@pod?": names separated by | are
 * alternatives; @pod lets the process run in a container's PID namespace (default: the
 * host's only); a trailing ? marks a process checked once seen.
 */
export function parseProcessSpecs(list: string): ProcessSpec[] {
  const specs: ProcessSpec[] = [];
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([\w.+|-]+?)(@pod)?(\?)?$/.exec(raw);
    const names = m?.[1]!.split('|') ?? [];
    if (!m || names.some((n) => !/^[\w.+-]+$/.test(n))) throw new Error(`not a process spec (name[|name...][@pod][?]): ${JSON.stringify(raw)}`);
    specs.push({ name: m[1]!, names, optional: !!m[3], scope: m[2] ? 'pod' : 'host' });
  }
  return specs;
}

/**
 * How deep in nested PID namespaces a process is, seen from the /proc root's namespace:
 * 1 in that namespace itself, 2 or more in a container's (the NSpid line of
 * /proc/<pid>/status, readable without privilege). Undefined where the kernel does not say.
 */
export function pidNamespaceDepth(status: string): number | undefined {
  const m = /^NSpid:\s*(.+)$/m.exec(status);
  return m ? m[1]!.trim().split(/\s+/).length : undefined;
}

export interface ProcessInfo {
  pid: number;
  /** The kernel's name for it (at most 15 characters). */
  comm: string;
  /** R, S, D, Z (zombie), X (dead), T, ... */
  state: string;
  /** Field 22: with the pid, identifies one process across pid reuse. */
  startTime: string;
}

/** Parses /proc/<pid>/stat. The name is in parentheses and may itself hold spaces and parentheses. */
export function parseStat(text: string): ProcessInfo | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const rest = text.slice(close + 1).trim().split(/\s+/);
  const state = rest[0];
  if (!Number.isInteger(pid) || pid <= 0 || !state || !/^[A-Za-z]$/.test(state)) return undefined;
  return { pid, comm: text.slice(open + 1, close), state, startTime: rest[19] ?? '' };
}

export interface ProcessTable {
  processes: ProcessInfo[];
  /** Entries skipped: gone before they could be read, unreadable, or not a process. */
  skipped: number;
}

/**
 * Reads every <root>/<pid>/stat. Processes come and go while this runs: an entry that
 * vanished or cannot be read is skipped, never an error. Only an unreadable root is.
 */
export function readProcessTable(root: string): ProcessTable {
  const processes: ProcessInfo[] = [];
  let skipped = 0;
  for (const entry of readdirSync(root)) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const info = parseStat(readFileSync(path.join(root, entry, 'stat'), 'utf8'));
      if (info) processes.push(info);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { processes, skipped };
}

function readDepth(root: string, pid: number): number | undefined {
  try {
    return pidNamespaceDepth(readFileSync(path.join(root, String(pid), 'status'), 'utf8'));
  } catch {
    return undefined;
  }
}

function readArgv(root: string, pid: number): string[] {
  try {
    return readFileSync(path.join(root, String(pid), 'cmdline'), 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

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
  ) {}

  check(): CheckResult {
    let table: ProcessTable;
    try {
      table = readProcessTable(this.root);
    } catch (err) {
      return { ok: false, message: `cannot read ${this.root}: ${(err as Error).message}` };
    }
    const nextCache = new Map<string, string[]>();
    const argvOf = (p: ProcessInfo) => {
      const key = `${p.pid}:${p.startTime}`;
      let argv = nextCache.get(key) ?? this.argvCache.get(key);
      if (!argv) argv = readArgv(this.root, p.pid);
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
        matches = matches.filter((p) => (readDepth(this.root, p.pid) ?? 1) <= 1);
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

export function conditionsCheck(node: V1Node | undefined): CheckResult {
  if (!node) return { ok: false, message: 'the Node object is not there' };
  const on = (node.status?.conditions ?? []).filter((c) => PRESSURE.includes(c.type) && c.status === 'True');
  if (on.length) return { ok: false, message: on.map((c) => `${c.type}${c.message ? ` (${c.message})` : ''}`).join('; ') };
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
