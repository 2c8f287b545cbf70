export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Polls `check` until it returns a value other than undefined/false, or throws after
 * `timeoutMs` with `what` and the last error seen, so a failing wait says what it waited for.
 * An error for which `stopOn` is true ends the wait at once (no point waiting on a dead process).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 100, stopOn }: { timeoutMs?: number; intervalMs?: number; stopOn?: (err: unknown) => boolean } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      // A check that hangs (a call with no timeout of its own) must not hold the wait
      // past its deadline: it is left to finish in the background.
      const v = await withDeadline(Promise.resolve().then(check), Math.max(deadline - Date.now(), 1000), `a check of ${what}`);
      if (v !== undefined && v !== false) return v as T;
      lastError = undefined;
    } catch (err) {
      if (stopOn?.(err)) throw new Error(`gave up waiting for ${what}: ${(err instanceof Error ? err.message : String(err)).split("\n")[0]}`, { cause: err });
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError ? `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Rejects if `promise` has not settled within `ms`. @kubernetes/client-node sets no
 * request timeout, and a request that never answers must not hold a lock or a worker
 * forever; the request itself is left to finish or fail in the background.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
