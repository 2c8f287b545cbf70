// A prepared /proc for the node agent: <pid>/stat and <pid>/cmdline files written by a
// test, so a simulated node has the processes (and the broken entries) the test wants.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeFakeProcess } from '../../dev/fake-proc.js';

export interface ProcRoot {
  root: string;
  add(pid: number, comm: string, o?: { state?: string; argv?: string[]; start?: number; nspid?: number[] }): void;
  remove(pid: number): void;
  /** An entry with arbitrary stat content, or none at all. */
  raw(entry: string, stat: string | undefined): void;
  dispose(): void;
}

export function procRoot(): ProcRoot {
  const root = mkdtempSync(path.join(tmpdir(), 'sickbay-proc-'));
  return {
    root,
    add(pid, comm, o = {}) {
      writeFakeProcess(root, pid, comm, o);
    },
    remove(pid) {
      rmSync(path.join(root, String(pid)), { recursive: true, force: true });
    },
    raw(entry, content) {
      mkdirSync(path.join(root, entry), { recursive: true });
      if (content !== undefined) writeFileSync(path.join(root, entry, 'stat'), content);
    },
    dispose() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
