// What every caller of the typed Kubernetes API needs: the merge-patch content type
// (client-node sends JSON Patch unless told otherwise) and readable errors.
import { type ConfigurationOptions, Observable, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/** For built-in objects whose lists merge by key (a Node's status.conditions by type). */
export const strategicMergePatch = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
export const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

/**
 * Options for a typed API call that `signal` cancels: the HTTP request itself is aborted
 * (client-node 1.4 has no request timeout of its own). The object-parameter API runs
 * middleware in its observable form, as setHeaderOptions builds it.
 */
export function abortable(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (res) => new Observable(Promise.resolve(res)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/** `base` (a patch's content type, or nothing) with the request aborted by `signal`. */
export function withSignal(signal: AbortSignal, base?: ConfigurationOptions): ConfigurationOptions {
  const abort = abortable(signal);
  return { ...base, middleware: [...(base?.middleware ?? []), ...(abort.middleware ?? [])], middlewareMergeStrategy: 'append' };
}

/**
 * One typed API call with a deadline that aborts the HTTP request itself: a call given up
 * on is not left running, to land later behind the back of a guard that counted it as
 * failed (as racing it against a timer would). Past `ms`: an Error saying what had no
 * answer. (The API server may still apply a write whose request it had read in full: the
 * writes are made under preconditions, so a retry finds out.)
 */
export async function callWithin<T>(ms: number, what: string, call: (options: ConfigurationOptions) => Promise<T>, base?: ConfigurationOptions): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  try {
    return await call(withSignal(signal, base));
  } catch (err) {
    if (signal.aborted) throw new Error(`${what}: no answer within ${ms} ms (the request was aborted)`, { cause: err });
    throw err;
  }
}

/** A merge patch that `signal` cancels. */
export const mergePatchUntil = (signal: AbortSignal) => withSignal(signal, mergePatch);

export { codeOf, errorDetail, errorText } from './errors.js';
