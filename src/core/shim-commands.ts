// Every command sickbay's own identity runs in a pod (pods/exec). The chart's scope policy
// lets that identity exec these and nothing else, so a compromised sickbay cannot run a
// shell of its choosing in every opted-in pod: chart/files/exec-commands.json is generated
// from this list (`npm run webhook-config`; a test checks it is current).
import { SHIM_MOUNT, SHIM_PROBE } from './names.js';

const BUSYBOX = `${SHIM_MOUNT}/bin/busybox`;

/** Holds the liveness wrapper at a quarantine (`probe --hold`). */
export const HOLD_COMMAND = [SHIM_PROBE, '--hold'];

/** The shim's dump script; SICKBAY_DIR, when the container sets it, moves the shim (tests run it outside a container). */
export const diagnoseCommand = (heap: boolean) => ['sh', '-c', `exec sh "\${SICKBAY_DIR:-${SHIM_MOUNT}}/bin/diagnose" "$@"`, 'diagnose', ...(heap ? ['--heap'] : [])];

/** The workload's own dump script (`sickbay.io/diagnostics-script`): the one command with a part the pod decides, an absolute path, and no argument but --heap. */
export const CUSTOM_DIAGNOSTICS_HEAD = ['sh', '-c', 'exec "$0" "$@"'];
export const customDiagnosticsCommand = (script: string, heap: boolean) => [...CUSTOM_DIAGNOSTICS_HEAD, script, ...(heap ? ['--heap'] : [])];

/** The scene bundle's reads (`sickbay collect`, and the archive before a deletion). */
export const COLLECT_TAR_COMMAND = [BUSYBOX, 'sh', '-c', `cd ${SHIM_MOUNT} && exec ${BUSYBOX} tar -cf - $(ls -d diag run pod jfr 2>/dev/null)`];
export const COLLECT_PS_COMMAND = [BUSYBOX, 'ps', '-o', 'pid,ppid,user,group,stat,vsz,rss,args'];
export const COLLECT_FDS_COMMAND = [BUSYBOX, 'sh', '-c', `for p in /proc/[0-9]*; do echo "== \${p#/proc/} $(${BUSYBOX} tr '\\0' ' ' < $p/cmdline 2>/dev/null)"; ${BUSYBOX} ls -l $p/fd 2>&1; done`];

/** The commands that never vary, as the scope policy compares them. */
export const FIXED_EXEC_COMMANDS: string[][] = [HOLD_COMMAND, diagnoseCommand(false), diagnoseCommand(true), COLLECT_TAR_COMMAND, COLLECT_PS_COMMAND, COLLECT_FDS_COMMAND];

/** chart/files/, as committed. */
export function committedChartFiles(): Record<string, string> {
  return { 'exec-commands.json': `${JSON.stringify(FIXED_EXEC_COMMANDS, null, 2)}\n` };
}
