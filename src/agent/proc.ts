// Reading a /proc tree: the process table, a process's PID-namespace depth and command
// line. Processes come and go while it is read: what vanished is skipped, never an error.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

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

/** What ProcessWatch reads: the table, and per process its namespace depth and argv. */
export interface ProcReader {
  table(): ProcessTable;
  depth(pid: number): number | undefined;
  argv(pid: number): string[];
}

export function procReader(root: string): ProcReader {
  return { table: () => readProcessTable(root), depth: (pid) => readDepth(root, pid), argv: (pid) => readArgv(root, pid) };
}
