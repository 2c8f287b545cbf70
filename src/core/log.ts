// JSON logs, one line each: `{...context, ...meta, level, message, timestamp}` with the keys
// in order, as winston's json format wrote them before. Components get child loggers
// carrying their context ({component, pod|node, reconcileId}); tests pass a stream that
// captures lines. No dependency: the node agent runs on every node, and winston with its
// streams was ~14 MB of its resident memory (bench/README.md, "The node agent").

export type Meta = Record<string, unknown>;

export interface Logger {
  error(message: string, meta?: Meta): void;
  warn(message: string, meta?: Meta): void;
  info(message: string, meta?: Meta): void;
  debug(message: string, meta?: Meta): void;
  /** A logger whose lines carry `meta` too (a line's own meta wins on a shared key). */
  child(meta: Meta): Logger;
}

const LEVELS = { error: 0, warn: 1, info: 2, debug: 3 } as const;
export type LogLevel = keyof typeof LEVELS;

class JsonLogger implements Logger {
  constructor(
    private readonly max: number,
    private readonly stream: NodeJS.WritableStream,
    private readonly context: Meta,
  ) {}

  error(message: string, meta?: Meta) {
    this.write(0, 'error', message, meta);
  }
  warn(message: string, meta?: Meta) {
    this.write(1, 'warn', message, meta);
  }
  info(message: string, meta?: Meta) {
    this.write(2, 'info', message, meta);
  }
  debug(message: string, meta?: Meta) {
    this.write(3, 'debug', message, meta);
  }
  child(meta: Meta): Logger {
    return new JsonLogger(this.max, this.stream, { ...this.context, ...meta });
  }

  private write(rank: number, level: LogLevel, message: string, meta: Meta | undefined) {
    // Below the level, nothing is built: a debug line per reconcile costs nothing at 10,000 pods.
    if (rank > this.max) return;
    this.stream.write(`${safeStringify({ ...this.context, ...meta, level, message, timestamp: new Date().toISOString() })}\n`);
  }
}

/**
 * JSON with every object's keys in order (a line reads the same whatever built it), an
 * Error as its stack, and never a throw: a cycle or a BigInt in a line's meta is written
 * as a marker, not lost with the line.
 */
export function safeStringify(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Error) return v.stack ?? v.message;
    if (!v || typeof v !== 'object') return v;
    if (seen.has(v)) return '[Circular]';
    seen.add(v);
    if (Array.isArray(v) || Object.getPrototypeOf(v) !== Object.prototype) return v;
    const sorted: Meta = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Meta)[k];
    return sorted;
  });
}

export function createLogger(level: string = 'info', stream: NodeJS.WritableStream = process.stderr): Logger {
  const max = LEVELS[level as LogLevel];
  if (max === undefined) throw new Error(`log level ${JSON.stringify(level)}: one of ${Object.keys(LEVELS).join(', ')}`);
  return new JsonLogger(max, stream, {});
}

/** A logger that writes nothing: for benchmarks and pure tests. */
export function silentLogger(): Logger {
  return new JsonLogger(-1, process.stderr, {});
}

/**
 * For the long-running commands: a promise rejected with nobody to handle it, or an
 * exception nothing caught, means a state nobody planned for. Say so in one JSON line
 * (written at once, synchronously, so the exit cannot lose it) and exit 1, so the kubelet
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
