// Kubernetes Events: every destructive or skipped action leaves one behind. Recording an
// Event never fails the action that caused it.
import { randomBytes } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { withDeadline } from '../util/wait.js';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
}

export class EventRecorder {
  constructor(
    private readonly core: CoreV1Api,
    private readonly component: string,
    private readonly log?: Logger,
    private readonly host = process.env.HOSTNAME ?? '',
  ) {}

  async record(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const namespace = ref.namespace || 'default';
    const now = new Date();
    try {
      await withDeadline(this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${ref.name}.${randomBytes(8).toString('hex')}`, namespace },
          involvedObject: { apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name, namespace: ref.namespace, uid: ref.uid },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: this.component, host: this.host || undefined },
          reportingComponent: this.component,
          reportingInstance: this.host || this.component,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      }), 10_000, 'event create');
    } catch (err) {
      this.log?.warn('could not record an Event', { reason, object: `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`, error: String((err as Error)?.message ?? err) });
    }
  }
}
