// Self-managed certificates generated in the cluster, not by `helm template` (which would
// make new ones at every render, and GitOps tools render at every sync). Each replica, at
// start and then every minute (more often for a short-lived CA), reads the Secret; the
// first to find none creates it (a CA, and a serving certificate for the Service's names);
// the others lose the create with a 409 and read what it made. A serving certificate in the
// last third of its life (at most 30 days before it ends) is renewed from the CA kept beside
// it, by one replica (updates carry the resourceVersion). What the Secret holds is written
// to the files the HTTPS server serves from and the CA bundle sync reads, so both work as
// with a mounted Secret.
//
// The CA rotates too, with an overlap, as cert-manager's trust bundles do: in the second
// half of its life (at most 30 days before it ends) a new CA is made and put first in
// ca.crt, the old one kept after it, so the webhooks trust both while every replica picks
// the bundle up and syncs it into the webhook configurations; a quarter of the CA's life
// later (7 days at most) the serving certificate is issued from the new CA; the old one
// leaves the bundle when it ends. At no moment does a replica serve a certificate the
// webhooks' bundle does not trust.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { type ConfigurationOptions, CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { callWithin, codeOf, errorText } from '../kube/api.js';
import type { Logger } from '../core/log.js';
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
  /** created: this replica made the Secret; renewed: it replaced the serving certificate; ca-rotated: it added a new CA; kept: it was good. */
  action: 'created' | 'renewed' | 'ca-rotated' | 'kept';
  notAfter: Date;
  /** When to look again: a minute, or a 24th of a short CA's life (5 s at least). */
  checkAfterMs: number;
}

/** The annotation that says when the newest CA joined the bundle (the overlap counts from it). */
export const ANN_CA_ROTATED_AT = 'sickbay.io/ca-rotated-at';

const DAY_MS = 86_400_000;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const text = (s: V1Secret, key: string) => (s.data?.[key] ? Buffer.from(s.data[key], 'base64').toString('utf8') : '');

/** When a certificate valid from `notBefore` to `notAfter` is renewed: a third of its life before the end, 30 days at most. */
export function renewalTime(notBefore: Date, notAfter: Date): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - Math.min(life / 3, 30 * DAY_MS));
}

/** When a CA is replaced: halfway through its life, 30 days before its end at most. */
export function caRotationTime(notBefore: Date, notAfter: Date): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  return new Date(notAfter.getTime() - Math.min(life / 2, 30 * DAY_MS));
}

/** How long both CAs are trusted before the serving certificate moves to the new one. */
export const caOverlapMs = (caLifeMs: number) => Math.min(caLifeMs / 4, 7 * DAY_MS);

/** How often the Secret and the CA bundle are looked at: often enough for several looks per overlap. */
export const checkIntervalMs = (caLifeMs: number) => Math.max(5_000, Math.min(60_000, caLifeMs / 24));

/** The certificates of a PEM bundle, in order. */
export function parseBundle(pem: string): X509Certificate[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
}

/** ca.crt's value: the certificates (PEM), one after the other. */
const bundleData = (pems: string[]) => b64(`${pems.map((p) => p.trim()).join('\n')}\n`);

const lifeOf = (c: X509Certificate) => Date.parse(c.validTo) - Date.parse(c.validFrom);

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
export async function ensureServingSecret(kc: KubeConfig, o: ServingSecretOptions, log: Logger, done?: ServingSecretResult['action']): Promise<ServingSecretResult> {
  const core = kc.makeApiClient(CoreV1Api);
  const call = <T>(p: (o: ConfigurationOptions) => Promise<T>, what: string) => callWithin(15_000, what, p);
  let action: ServingSecretResult['action'] = done ?? 'kept';
  let secret: V1Secret;
  try {
    secret = await call((opts) => core.readNamespacedSecret({ name: o.name, namespace: o.namespace }, opts), 'read of the serving Secret');
  } catch (err) {
    if (codeOf(err) !== 404) throw new Error(`cannot read Secret ${o.namespace}/${o.name}: ${errorText(err)}`, { cause: err });
    try {
      secret = await call((opts) => core.createNamespacedSecret({ namespace: o.namespace, body: newSecret(o) }, opts), 'create of the serving Secret');
      action = 'created';
      log.info('generated the CA and serving certificate in a new Secret', { secret: `${o.namespace}/${o.name}`, dnsNames: o.dnsNames });
    } catch (err2) {
      if (codeOf(err2) !== 409) throw new Error(`cannot create Secret ${o.namespace}/${o.name}: ${errorText(err2)}`, { cause: err2 });
      // Another replica made it first: use what it made.
      secret = await call((opts) => core.readNamespacedSecret({ name: o.name, namespace: o.namespace }, opts), 'read of the serving Secret');
    }
  }
  let certPem = text(secret, 'tls.crt');
  let keyPem = text(secret, 'tls.key');
  let caPem = text(secret, 'ca.crt');
  let cert: X509Certificate;
  let bundle: X509Certificate[];
  try {
    cert = new X509Certificate(certPem);
    if (!caPem) throw new Error('no ca.crt');
    bundle = parseBundle(caPem);
    if (bundle.length === 0) throw new Error('no certificate in ca.crt');
    if (!keyPem) throw new Error('no tls.key');
  } catch (err) {
    throw new Error(`Secret ${o.namespace}/${o.name} holds no usable certificate (${(err as Error).message}); delete it and sickbay generates a new one`, { cause: err });
  }
  const where = `${o.namespace}/${o.name}`;
  const caKey = text(secret, 'ca.key');
  const signing = bundle[0]!;
  const now = Date.now();
  const update = async (data: Record<string, string>, annotations: Record<string, string> = {}) =>
    call(
      (opts) => core.replaceNamespacedSecret({ name: o.name, namespace: o.namespace, body: { ...secret, metadata: { ...secret.metadata, annotations: { ...secret.metadata?.annotations, ...annotations } }, data: { ...secret.data, ...data } } }, opts),
      'update of the serving Secret',
    );
  // The bundle without the CAs that have ended (the signing one stays, whatever its date).
  const live = bundle.filter((c, i) => i === 0 || Date.parse(c.validTo) > now);
  const pruned: Record<string, string> = live.length < bundle.length ? { 'ca.crt': bundleData(live.map((c) => c.toString())) } : {};
  try {
    // 1. The CA: a new one joins the bundle, first; the old one stays trusted.
    if (caKey && now >= caRotationTime(new Date(signing.validFrom), new Date(signing.validTo)).getTime()) {
      const ca = createCA(`${o.name}-ca`, o.validityDays);
      const kept = bundle.filter((c) => Date.parse(c.validTo) > now);
      secret = await update({ 'ca.crt': bundleData([ca.certPem, ...kept.map((c) => c.toString())]), 'ca.key': b64(ca.keyPem) }, { [ANN_CA_ROTATED_AT]: new Date(now).toISOString() });
      action = 'ca-rotated';
      log.info('rotated the CA: the new one is trusted beside the old one; the serving certificate moves to it after the overlap', { secret: where, previousCaNotAfter: signing.validTo, caNotAfter: ca.notAfter, overlapMs: caOverlapMs(lifeOf(signing)) });
      return ensureServingSecret(kc, o, log, action);
    }
    // 2. The serving certificate: renewed when due, or moved to the newest CA once the overlap has passed.
    // Issued by the newest CA? (Both CAs have the same name: only the signature tells.)
    const onOld = !cert.verify(signing.publicKey);
    const rotatedAt = Date.parse(secret.metadata?.annotations?.[ANN_CA_ROTATED_AT] ?? '') || 0;
    const due = now >= renewalTime(new Date(cert.validFrom), new Date(cert.validTo)).getTime();
    const move = onOld && now >= rotatedAt + caOverlapMs(lifeOf(signing));
    if (due || move) {
      if (!caKey) {
        log.warn('the serving certificate is due for renewal, but its Secret holds no ca.key to sign a new one; renew it yourself', { secret: where, notAfter: cert.validTo });
      } else {
        const leaf = issue(o, { certPem: signing.toString(), keyPem: caKey, notAfter: new Date(signing.validTo) });
        // The CAs that have ended leave the bundle with it.
        secret = await update({ 'tls.crt': b64(leaf.certPem), 'tls.key': b64(leaf.keyPem), ...pruned });
        certPem = leaf.certPem;
        keyPem = leaf.keyPem;
        caPem = text(secret, 'ca.crt');
        action = 'renewed';
        log.info(move ? 'moved the serving certificate to the new CA' : 'renewed the serving certificate', { secret: where, previousNotAfter: cert.validTo, notAfter: leaf.notAfter });
      }
    } else if (live.length < bundle.length && !onOld) {
      // 3. An ended CA leaves the bundle.
      secret = await update(pruned);
      caPem = text(secret, 'ca.crt');
    }
  } catch (err) {
    if (codeOf(err) !== 409) throw new Error(`cannot update Secret ${where}: ${errorText(err)}`, { cause: err });
    // Another replica changed it first: take what it wrote.
    return ensureServingSecret(kc, o, log);
  }
  // CA first: a CA bundle sync that sees the new CA before the server serves the new
  // certificate only widens what clients trust.
  if (readOr(o.files.ca) !== caPem) writeAtomically(o.files.ca, caPem, 0o644);
  if (readOr(o.files.key) !== keyPem || readOr(o.files.cert) !== certPem) {
    writeAtomically(o.files.key, keyPem, 0o600);
    writeAtomically(o.files.cert, certPem, 0o644);
  }
  return { action, notAfter: new Date(new X509Certificate(certPem).validTo), checkAfterMs: checkIntervalMs(lifeOf(parseBundle(caPem)[0]!)) };
}
