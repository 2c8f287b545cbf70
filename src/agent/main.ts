// `sickbay agent --node-name N`, as the command line's entry runs it: only the agent's own
// modules load (no client-node, express or controllers), because the agent runs on every
// node and the rest of sickbay was most of its memory (bench/README.md, "The node agent").
import { parseArgs } from 'node:util';
import { CliError, commandDoc, EXIT, helpText } from '../cli/commands.js';
import { ConfigError, readConfig } from '../core/config.js';
import { createLogger, exitOnUnhandled } from '../core/log.js';
import { VERSION } from '../core/version.js';
import { lightAccess } from '../kube/light-config.js';
import type { ApiAccess } from '../kube/rest.js';

export async function agentMain(args: string[], prog: string): Promise<number> {
  const usage = (what: string) => new CliError(`${what}\n\n${helpText(commandDoc('agent')!, prog)}`.trimEnd(), EXIT.usage);
  let values: { kubeconfig?: string; context?: string; 'node-name'?: string };
  try {
    ({ values } = parseArgs({ args, options: { kubeconfig: { type: 'string' }, context: { type: 'string' }, 'node-name': { type: 'string' } } }));
  } catch (err) {
    throw usage((err as Error).message);
  }
  const config = readConfig();
  const nodeName = values['node-name'] || config.agent.nodeName;
  if (!nodeName) throw usage('--node-name (or SICKBAY_NODE_NAME) is required');
  const log = createLogger(config.logLevel).child({ component: 'agent' });
  exitOnUnhandled('agent');
  const access = await agentAccess(values.kubeconfig, values.context);
  const { runAgent } = await import('./command.js');
  const handle = await runAgent(config.agent, access, log, { nodeName, version: VERSION });
  await new Promise<void>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => void handle.stop().then(resolve));
  });
  return 0;
}

/** The light access when the kubeconfig allows it; client-node's KubeConfig for an exec plugin or an auth provider. */
async function agentAccess(file: string | undefined, context: string | undefined): Promise<ApiAccess> {
  let light;
  try {
    light = lightAccess(file, context);
  } catch (err) {
    const message = (err as Error).message;
    throw new CliError(message, /no such file|is not in/.test(message) ? EXIT.notFound : EXIT.failed, { cause: err });
  }
  if (light) return light;
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (context) kc.setCurrentContext(context);
  return kc;
}

/** The process's end: the code, or the error said once on stderr with its exit code. */
export function exitWith(run: Promise<number>, prog: string): void {
  run.then(
    (code) => process.exit(code),
    (err) => {
      const code = err instanceof CliError ? err.exitCode : EXIT.failed;
      process.stderr.write(`${prog}: ${err instanceof Error ? (err instanceof CliError || err instanceof ConfigError ? err.message : err.message.split('\n')[0]) : String(err)}\n`);
      process.exit(code);
    },
  );
}
