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

/** A merge patch that `signal` cancels. */
export const mergePatchUntil = (signal: AbortSignal) => setHeaderOptions('Content-Type', PatchStrategy.MergePatch, abortable(signal));

export { codeOf, errorDetail, errorText } from './errors.js';
