#!/usr/bin/env node
// The `sickbay` command line's entry (also `kubectl-sickbay`, so `kubectl sickbay status`
// works). `sickbay agent` runs on every node: it loads its own modules only, not the rest
// of the command line (client-node's models alone are ~70 MB of a process).
import path from 'node:path';

const [command, ...rest] = process.argv.slice(2);
if (command === 'agent' && !rest.includes('--help') && !rest.includes('-h')) {
  const { agentMain, exitWith } = await import('./agent/main.js');
  const prog = path.basename(process.argv[1] ?? 'sickbay').startsWith('kubectl-') ? 'kubectl sickbay' : 'sickbay';
  exitWith(agentMain(rest, prog), prog);
} else {
  await import('./cli/main.js');
}
