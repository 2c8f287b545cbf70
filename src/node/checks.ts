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
  name: string;
  /** Checked only once seen on this node ("dockerd?" on a containerd-only node). */
  optional: boolean;
}

/** "dockerd?,containerd,kubelet": a trailing ? marks a process checked once seen. */
export function parseProcessSpecs(list: string): ProcessSpec[] {
  const specs: ProcessSpec[] = [];
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const optional = raw.endsWith('?');
    const name = optional ? raw.slice(0, -1) : raw;
    if (!/^[\w.@+-]+$/.test(name)) throw new Error(`not a process name: ${JSON.stringify(raw)}`);
    specs.push({ name, optional });
  }
  return specs;
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
 * not already answer, and cached per process.
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
      const short = spec.name.slice(0, 15);
      let matches = table.processes.filter((p) => p.comm === short);
      if (matches.length === 0) {
        matches = table.processes.filter((p) => {
          if (p.state === 'Z' || p.state === 'X') return false; // a zombie has no command line
          const argv = argvOf(p);
          return argv.length > 0 && (path.basename(argv[0]!) === spec.name || argv.slice(1).includes(`-${spec.name}`));
        });
      }
      const alive = matches.filter((p) => p.state !== 'Z' && p.state !== 'X');
      if (alive.length > 0) {
        this.seen.add(spec.name);
        fine.push(spec.name);
      } else if (matches.length > 0) {
        this.seen.add(spec.name);
        problems.push(`${spec.name} is a zombie (pid ${matches.map((p) => p.pid).join(', ')})`);
      } else if (!spec.optional || this.seen.has(spec.name)) {
        problems.push(`${spec.name} is not running`);
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
