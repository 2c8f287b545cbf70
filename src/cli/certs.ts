// `sickbay certs`: a CA and a serving certificate for development and self-managed
// installs, plus the webhook configurations with the CA bundle filled in.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { CoreV1Api, dumpYaml, type KubeConfig } from '@kubernetes/client-node';
import { codeOf } from '../kube/api.js';
import { createCA, type IssuedCertificate, issueCertificate, serviceDnsNames } from '../tls/certificates.js';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration, type WebhookTarget } from '../webhook/webhook-configurations.js';

export interface CertsOptions {
  outDir: string;
  service: string;
  namespace: string;
  dnsNames: string[];
  ipAddresses: string[];
  validityDays: number;
  /** Register the webhooks by URL (sickbay outside the cluster) instead of by Service. */
  url?: string;
}

export interface CertsResult {
  caPem: string;
  certFile: string;
  keyFile: string;
  caFile: string;
  manifests: string[];
}

export function writeCerts(o: CertsOptions): CertsResult {
  for (const ip of o.ipAddresses) if (!isIP(ip)) throw new Error(`--ip ${JSON.stringify(ip)} is not an IP address`);
  if (!Number.isFinite(o.validityDays) || o.validityDays < 1) throw new Error('--days must be a positive number');
  mkdirSync(o.outDir, { recursive: true });
  const caFile = path.join(o.outDir, 'ca.crt');
  const caKeyFile = path.join(o.outDir, 'ca.key');
  // Reuse an existing CA so a re-issued serving certificate stays trusted by the
  // webhook configurations already registered (rotation without re-registering).
  let ca: IssuedCertificate;
  if (existsSync(caFile) && existsSync(caKeyFile)) {
    ca = { certPem: readFileSync(caFile, 'utf8'), keyPem: readFileSync(caKeyFile, 'utf8'), notAfter: new Date(0) };
  } else {
    ca = createCA('sickbay-webhook-ca');
    writeFileSync(caKeyFile, ca.keyPem, { mode: 0o600 });
    writeFileSync(caFile, ca.certPem);
  }
  const leaf = issueCertificate(ca, {
    commonName: `${o.service}.${o.namespace}.svc`,
    dnsNames: [...new Set([...serviceDnsNames(o.service, o.namespace), ...o.dnsNames])],
    ipAddresses: o.ipAddresses,
    usages: ['server'],
    validityDays: o.validityDays,
  });
  const certFile = path.join(o.outDir, 'tls.crt');
  const keyFile = path.join(o.outDir, 'tls.key');
  // Key first, then certificate: a reloader that sees the new certificate finds its key.
  writeFileSync(`${keyFile}.tmp`, leaf.keyPem, { mode: 0o600 });
  writeFileSync(`${certFile}.tmp`, leaf.certPem);
  renameSync(`${keyFile}.tmp`, keyFile);
  renameSync(`${certFile}.tmp`, certFile);

  const target: WebhookTarget = o.url ? { url: o.url } : { service: { name: o.service, namespace: o.namespace } };
  const common = { target, caBundle: Buffer.from(ca.certPem).toString('base64'), ownNamespace: o.namespace };
  const dir = path.join(o.outDir, 'webhook-config');
  mkdirSync(dir, { recursive: true });
  const manifests = [
    [path.join(dir, 'mutating.yaml'), mutatingWebhookConfiguration(common)],
    [path.join(dir, 'validating.yaml'), validatingWebhookConfiguration(common)],
  ] as const;
  for (const [file, obj] of manifests) writeFileSync(file, dumpYaml(obj));
  return { caPem: ca.certPem, certFile, keyFile, caFile, manifests: manifests.map(([f]) => f) };
}


/** `certs --apply`: the three files as the Secret the chart's `certificates.selfManaged.existingSecret` names (created, or replaced). */
export async function applySecret(kc: KubeConfig, o: { namespace: string; name: string; files: Pick<CertsResult, 'certFile' | 'keyFile' | 'caFile'> }): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const body = {
    metadata: { name: o.name, namespace: o.namespace, labels: { 'app.kubernetes.io/managed-by': 'sickbay-certs' } },
    type: 'kubernetes.io/tls',
    stringData: { 'tls.crt': readFileSync(o.files.certFile, 'utf8'), 'tls.key': readFileSync(o.files.keyFile, 'utf8'), 'ca.crt': readFileSync(o.files.caFile, 'utf8') },
  };
  try {
    await core.createNamespacedSecret({ namespace: o.namespace, body });
    return `created Secret ${o.namespace}/${o.name}\n`;
  } catch (err) {
    if (codeOf(err) !== 409) throw err;
  }
  await core.replaceNamespacedSecret({ namespace: o.namespace, name: o.name, body });
  return `replaced Secret ${o.namespace}/${o.name}\n`;
}
