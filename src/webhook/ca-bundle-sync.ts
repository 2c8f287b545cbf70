// Self-managed certificates: every replica keeps the CA bundle of sickbay's two webhook
// configurations equal to the CA file it serves under (the mounted Secret's ca.crt). A
// rotated Secret, a configuration re-applied without its bundle, or an install with a
// Secret of the user's own all converge within one interval. Only those two objects,
// by name, are ever touched (and RBAC grants no others).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AdmissionregistrationV1Api, type ConfigurationOptions, type KubeConfig, type V1MutatingWebhookConfiguration, type V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { callWithin, codeOf, errorText, mergePatch } from '../kube/api.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { sleep } from '../util/wait.js';
import { checkIntervalMs, parseBundle } from '../tls/serving-secret.js';

type Configuration = V1MutatingWebhookConfiguration | V1ValidatingWebhookConfiguration;

export class CaBundleSync {
  private readonly api: AdmissionregistrationV1Api;
  private readonly missing = new Set<string>();

  constructor(
    kc: KubeConfig,
    private readonly o: { name: string; caFile: string; intervalMs?: number },
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.api = kc.makeApiClient(AdmissionregistrationV1Api);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.syncOnce().catch((err) => this.log.warn('CA bundle sync failed; retrying', { error: errorText(err) }));
      await sleep(this.o.intervalMs ?? this.interval(), signal);
    }
  }

  /**
   * 30 s; for a short-lived CA a 24th of its life (5 s at least), so a rotated CA reaches
   * the webhooks well within the overlap before the serving certificate moves to it.
   */
  private interval(): number {
    try {
      const first = parseBundle(readFileSync(this.o.caFile, 'utf8'))[0];
      return first ? Math.min(30_000, checkIntervalMs(Date.parse(first.validTo) - Date.parse(first.validFrom))) : 30_000;
    } catch {
      return 30_000;
    }
  }

  /** Brings both configurations in line with the CA file; returns how many it changed. */
  async syncOnce(): Promise<number> {
    const pem = readFileSync(this.o.caFile, 'utf8');
    if (!pem.includes('BEGIN CERTIFICATE')) throw new Error(`${this.o.caFile} holds no PEM certificate`);
    const bundle = Buffer.from(pem).toString('base64');
    let changed = 0;
    const kinds = [
      ['MutatingWebhookConfiguration', (o: ConfigurationOptions) => this.api.readMutatingWebhookConfiguration({ name: this.o.name }, o), (body: object, o: ConfigurationOptions) => this.api.patchMutatingWebhookConfiguration({ name: this.o.name, body }, o)],
      ['ValidatingWebhookConfiguration', (o: ConfigurationOptions) => this.api.readValidatingWebhookConfiguration({ name: this.o.name }, o), (body: object, o: ConfigurationOptions) => this.api.patchValidatingWebhookConfiguration({ name: this.o.name, body }, o)],
    ] as const;
    for (const [kind, read, patch] of kinds) {
      let current: Configuration;
      try {
        current = await callWithin<Configuration>(10_000, `${kind} read`, read);
      } catch (err) {
        if (codeOf(err) !== 404) throw err;
        if (!this.missing.has(kind)) this.log.warn(`${kind} ${this.o.name} not found; nothing to keep in sync`);
        this.missing.add(kind);
        continue;
      }
      this.missing.delete(kind);
      const webhooks = current.webhooks ?? [];
      if (webhooks.every((w) => w.clientConfig.caBundle === bundle)) continue;
      // The whole list, guarded by resourceVersion: a concurrent edit makes this a 409, retried next round.
      const body = { metadata: { resourceVersion: current.metadata?.resourceVersion }, webhooks: webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: bundle } })) };
      await callWithin(10_000, `${kind} patch`, (o) => patch(body, o) as Promise<unknown>, mergePatch);
      changed++;
      this.metrics.caBundleSyncs.inc({ kind });
      this.log.info('webhook CA bundle updated from the serving Secret', { kind, name: this.o.name, ca: createHash('sha256').update(pem).digest('hex').slice(0, 16) });
    }
    return changed;
  }
}
