// JSON logs through winston. Components get child loggers carrying their context
// ({component, pod|node, reconcileId}); tests pass a logger that captures lines.
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level = 'info', stream: NodeJS.WritableStream = process.stderr): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Stream({ stream })],
  });
}

/** A logger that writes nothing: for benchmarks and pure tests. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
