// Self-managed certificates generated in the cluster, not by `helm template` (which would
// make new ones at every render, and GitOps tools render at every sync). Each replica, at
// start and then every minute, reads the Secret; the first to find none creates it (a
// CA, and a serving certificate for the Service's names); the others lose the create with
// a 409 and read what it made. A serving certificate in the last third of its life (at
// most 30 days before it ends) is renewed from the CA kept beside it, by one replica
// (updates carry the resourceVersion). What the Secret holds is written to the files the
// HTTPS server serves from and the CA bundle sync reads, so both work as with a mounted
// Secret.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { codeOf, errorText } from '../kube/api.js';
import type { Logger } from '../core/log.js';
import { withDeadline } from '../util/wait.js';
import { createCA, issueCertificate } from './certificates.js';

export interface ServingSecretOptions {
  namespace: string;
  name: string;
  /** The Service's names (and any extra) for the serving certificate. */
  dnsNames: string[];
  ipAddresses: string[];
  validityDays: number;
  files: { cert: string; key: string; ca: string };
}

export interface ServingSecretResult {
  /** created: this replica made the Secret; renewed: it replaced the serving certificate; kept: it was good. */
  action: 'created' | 'renewed' | 'kept';
  notAfter: Date;
}

const DAY_MS = 86_400_000;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (s: V1Secret, key: string) => (s.data?.[key] ? Buffer.from(s.data[key], 'base64').toString('utf8') : '');

/** When a certificate valid from `notBefore` to `notAfter` is renewed: a third of its life before the end, 30 days at most. */
export function renewalTime(notBefore: Date, notAfter: Date): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - Math.min(life / 3, 30 * DAY_MS));
}

function issue(o: ServingSecretOptions, ca: { certPem: string; keyPem: string; notAfter: Date }) {
  return issueCertificate(ca, { commonName: o.dnsNames[0] ?? o.name, dnsNames: o.dnsNames, ipAddresses: o.ipAddresses, usages: ['server'], validityDays: o.validityDays });
}

function newSecret(o: ServingSecretOptions): V1Secret {
  const ca = createCA(`${o.name}-ca`, o.validityDays);
  const leaf = issue(o, ca);
  return {
    metadata: { name: o.name, namespace: o.namespace, labels: { 'app.kubernetes.io/managed-by': 'sickbay' }, annotations: { 'sickbay.io/generated-by': 'sickbay serve (self-managed certificates)' } },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(leaf.certPem), 'tls.key': b64(leaf.keyPem), 'ca.crt': b64(ca.certPem), 'ca.key': b64(ca.keyPem) },
  };
}

/** Writes a file whole or not at all (the reloader never reads half of one). */
function writeAtomically(file: string, content: string, mode: number) {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, file);
}

function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Makes sure the Secret exists and holds a serving certificate that is not due for
 * renewal, and that the files hold what it holds.
 */
export async function ensureServingSecret(kc: KubeConfig, o: ServingSecretOptions, log: Logger): Promise<ServingSecretResult> {
  const core = kc.makeApiClient(CoreV1Api);
  const call = <T>(p: Promise<T>, what: string) => withDeadline(p, 15_000, what);
  let action: ServingSecretResult['action'] = 'kept';
  let secret: V1Secret;
  try {
    secret = await call(core.readNamespacedSecret({ name: o.name, namespace: o.namespace }), 'read of the serving Secret');
  } catch (err) {
    if (codeOf(err) !== 404) throw new Error(`cannot read Secret ${o.namespace}/${o.name}: ${errorText(err)}`);
    try {
      secret = await call(core.createNamespacedSecret({ namespace: o.namespace, body: newSecret(o) }), 'create of the serving Secret');
      action = 'created';
      log.info('generated the CA and serving certificate in a new Secret', { secret: `${o.namespace}/${o.name}`, dnsNames: o.dnsNames });
    } catch (err2) {
      if (codeOf(err2) !== 409) throw new Error(`cannot create Secret ${o.namespace}/${o.name}: ${errorText(err2)}`);
      // Another replica made it first: use what it made.
      secret = await call(core.readNamespacedSecret({ name: o.name, namespace: o.namespace }), 'read of the serving Secret');
    }
  }
  let certPem = text(secret, 'tls.crt');
  let keyPem = text(secret, 'tls.key');
  const caPem = text(secret, 'ca.crt');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
    if (!caPem) throw new Error('no ca.crt');
    new X509Certificate(caPem);
    if (!keyPem) throw new Error('no tls.key');
  } catch (err) {
    throw new Error(`Secret ${o.namespace}/${o.name} holds no usable certificate (${(err as Error).message}); delete it and sickbay generates a new one`);
  }
  const notAfter = new Date(cert.validTo);
  if (Date.now() >= renewalTime(new Date(cert.validFrom), notAfter).getTime()) {
    const caKey = text(secret, 'ca.key');
    if (!caKey) {
      log.warn('the serving certificate is due for renewal, but its Secret holds no ca.key to sign a new one; renew it yourself', { secret: `${o.namespace}/${o.name}`, notAfter });
    } else {
      const ca = { certPem: caPem, keyPem: caKey, notAfter: new Date(new X509Certificate(caPem).validTo) };
      const leaf = issue(o, ca);
      try {
        secret = await call(
          core.replaceNamespacedSecret({ name: o.name, namespace: o.namespace, body: { ...secret, data: { ...secret.data, 'tls.crt': b64(leaf.certPem), 'tls.key': b64(leaf.keyPem) } } }),
          'update of the serving Secret',
        );
        certPem = leaf.certPem;
        keyPem = leaf.keyPem;
        action = 'renewed';
        log.info('renewed the serving certificate', { secret: `${o.namespace}/${o.name}`, previousNotAfter: notAfter, notAfter: leaf.notAfter });
      } catch (err) {
        if (codeOf(err) !== 409) throw new Error(`cannot update Secret ${o.namespace}/${o.name}: ${errorText(err)}`);
        // Another replica renewed it: take its certificate.
        return ensureServingSecret(kc, o, log);
      }
    }
  }
  // CA first: a CA bundle sync that sees the new CA before the server serves the new
  // certificate only widens what clients trust.
  if (readOr(o.files.ca) !== caPem) writeAtomically(o.files.ca, caPem, 0o644);
  if (readOr(o.files.key) !== keyPem || readOr(o.files.cert) !== certPem) {
    writeAtomically(o.files.key, keyPem, 0o600);
    writeAtomically(o.files.cert, certPem, 0o644);
  }
  return { action, notAfter: new Date(new X509Certificate(certPem).validTo) };
}
