// What every caller of the typed Kubernetes API needs: the merge-patch content type
// (client-node sends JSON Patch unless told otherwise) and readable errors.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function codeOf(err: unknown): number | undefined {
  return err && typeof err === 'object' && 'code' in err && typeof err.code === 'number' ? err.code : undefined;
}

/** The API server's Status message when there is one, else the error's. */
export function errorText(err: unknown): string {
  if (err && typeof err === 'object' && 'body' in err && typeof err.body === 'string') {
    try {
      const status = JSON.parse(err.body) as { message?: string };
      if (status.message) return `${codeOf(err) ?? ''} ${status.message}`.trim();
    } catch {
      // not a Status
    }
  }
  return err instanceof Error ? err.message : String(err);
}
