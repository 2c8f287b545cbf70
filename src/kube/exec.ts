// Exec into a container with the timeout @kubernetes/client-node's Exec lacks, and an
// exit code read the way both a real kubelet (NonZeroExitCode, cause ExitCode) and kwok
// (InternalError "... exit status N") report it.
import { Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';

export interface ExecResult {
  /** The command's exit code; undefined when the exec itself failed or timed out. */
  exitCode?: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Why the exec failed before the command could answer (not found, forbidden, timeout). */
  error?: string;
}

const MAX_CAPTURE = 1 << 20;

function collector() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      if (text.length < MAX_CAPTURE) text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

export function exitCodeOf(status: V1Status): number | undefined {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (cause?.message && /^\d+$/.test(cause.message)) return Number(cause.message);
  const m = /exit status (\d+)/.exec(status.message ?? '');
  return m ? Number(m[1]) : undefined;
}

/** What stdout may go to: a Node stream or a streamx one (tar-stream's). */
export interface Sink {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Stdout into `sink` instead of the result (a dump, a tar stream), with backpressure: the
 * websocket is paused while the sink is full, so a slow sink never makes the process hold
 * the whole stream in memory.
 */
function throttled(sink: Sink, socket: () => { pause?(): void; resume?(): void } | undefined): Writable {
  return new Writable({
    write(chunk, _enc, cb) {
      if (!sink.write(chunk)) {
        socket()?.pause?.();
        sink.once('drain', () => socket()?.resume?.());
      }
      cb();
    },
  });
}

export async function execInPod(
  kc: KubeConfig,
  target: { namespace: string; pod: string; container: string },
  command: string[],
  timeoutMs: number,
  o: { stdout?: Sink } = {},
): Promise<ExecResult> {
  let socket: { close(): void; terminate?(): void; pause?(): void; resume?(): void } | undefined;
  const out = o.stdout ? { stream: throttled(o.stdout, () => socket), text: () => '' } : collector();
  const err = collector();
  let timer: NodeJS.Timeout | undefined;
  const result = new Promise<ExecResult>((resolve) => {
    timer = setTimeout(() => {
      socket?.terminate?.() ?? socket?.close();
      resolve({ stdout: out.text(), stderr: err.text(), timedOut: true, error: `timed out after ${timeoutMs} ms` });
    }, timeoutMs);
    new Exec(kc)
      .exec(target.namespace, target.pod, target.container, command, out.stream, err.stream, null, false, (status) => {
        const exitCode = exitCodeOf(status);
        resolve({
          exitCode,
          stdout: out.text(),
          stderr: err.text(),
          timedOut: false,
          ...(exitCode === undefined ? { error: status.message ?? 'exec failed' } : {}),
        });
      })
      .then((ws) => {
        socket = ws;
        ws.on('close', () => setTimeout(() => resolve({ stdout: out.text(), stderr: err.text(), timedOut: false, error: 'connection closed without a status' }), 50));
      })
      .catch((e: unknown) => resolve({ stdout: '', stderr: '', timedOut: false, error: describe(e) }));
  });
  try {
    return await result;
  } finally {
    clearTimeout(timer);
  }
}

// The websocket rejects with an ErrorEvent ("Unexpected server response: 404"), not an Error.
function describe(e: unknown): string {
  if (e && typeof e === 'object' && 'message' in e && typeof e.message === 'string') return e.message;
  return String(e);
}
