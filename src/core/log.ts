// JSON logs through winston. Components get child loggers carrying their context
// ({component, pod|node, reconcileId}); tests pass a logger that captures lines.
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level = 'info', stream: NodeJS.WritableStream = process.stderr): Logger {
  const logger = winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Stream({ stream })],
  });
  // winston drops a line below the level only after it has gone through its streams; a
  // debug line per reconcile then costs real time at 10,000 pods. Below the level, the
  // level methods return at once (child loggers inherit this).
  const methods = logger as unknown as Record<string, (...args: unknown[]) => Logger>;
  for (const name of Object.keys(logger.levels)) {
    const write = methods[name];
    if (typeof write !== 'function') continue;
    methods[name] = function (this: Logger, ...args: unknown[]) {
      return this.isLevelEnabled(name) ? write.apply(this, args) : this;
    };
  }
  return logger;
}

/** A logger that writes nothing: for benchmarks and pure tests. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

/**
 * For the long-running commands: a promise rejected with nobody to handle it, or an
 * exception nothing caught, means a state nobody planned for. Say so in one JSON line
 * (written at once: a winston line could be lost to the exit) and exit 1, so the kubelet
 * restarts the process instead of it running on in that state.
 */
export function exitOnUnhandled(component: string, exit: (code: number) => void = (code) => process.exit(code)) {
  const die = (kind: string) => (err: unknown) => {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`${JSON.stringify({ component, level: 'error', message: `${kind}: exiting, the process is in an unknown state`, error, timestamp: new Date().toISOString() })}\n`);
    exit(1);
  };
  process.on('unhandledRejection', die('unhandled promise rejection'));
  process.on('uncaughtException', die('uncaught exception'));
}
