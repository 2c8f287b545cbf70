// Certificates the way cert-manager issues them: random serials, SHA-256, the right
// extended key usages, subject alternative names, and a leaf that never outlives its CA.
// Used by `sickbay certs` and by the local control plane's PKI.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

const { pki, md } = forge;

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

export interface CertificateRequest {
  commonName: string;
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  /** serverAuth, clientAuth or both. */
  usages: Array<'server' | 'client'>;
  validityDays: number;
  /** How far before now it starts (default: 5 minutes, a tenth of a short life at most); a test makes one issued earlier. */
  backdateMs?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
// Clock skew between the machine that issues and the API server that verifies.
const BACKDATE_MS = 5 * 60 * 1000;

function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // a positive ASN.1 INTEGER, as RFC 5280 asks
  return bytes.toString('hex');
}

function generateKeyPair(): { publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey } {
  // node:crypto generates RSA keys natively (tens of ms); forge's own generator is pure JS (seconds).
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  const forgeKey = pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

function subject(commonName: string, organizations: string[] = []): forge.pki.CertificateField[] {
  return [{ name: 'commonName', value: commonName }, ...organizations.map((value) => ({ name: 'organizationName', value }))];
}

/** A new key pair and an unsigned certificate for it: random serial, backdated start, `notAfter` capped. */
function newCertificate(validityDays: number, notAfterCap = Infinity, backdateMs?: number) {
  const keys = generateKeyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  const now = Date.now();
  // Backdated for clocks a little behind; never by more than a tenth of a short life.
  cert.validity.notBefore = new Date(now - (backdateMs ?? Math.min(BACKDATE_MS, (validityDays * DAY_MS) / 10)));
  cert.validity.notAfter = new Date(Math.min(now + validityDays * DAY_MS, notAfterCap));
  return { keys, cert };
}

export function createCA(commonName: string, validityDays = 3650): IssuedCertificate {
  const { keys, cert } = newCertificate(validityDays);
  cert.setSubject(subject(commonName));
  cert.setIssuer(subject(commonName));
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: pki.privateKeyToPem(keys.privateKey), notAfter: cert.validity.notAfter };
}

export function issueCertificate(ca: IssuedCertificate, req: CertificateRequest): IssuedCertificate {
  if (req.usages.length === 0) throw new Error('a certificate needs at least one usage');
  const caCert = pki.certificateFromPem(ca.certPem);
  const caKey = pki.privateKeyFromPem(ca.keyPem);
  // The leaf never outlives its CA.
  const { keys, cert } = newCertificate(req.validityDays, caCert.validity.notAfter.getTime(), req.backdateMs);
  cert.setSubject(subject(req.commonName, req.organizations));
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(req.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: req.usages.includes('server'), clientAuth: req.usages.includes('client') },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: pki.privateKeyToPem(keys.privateKey), notAfter: cert.validity.notAfter };
}

/** The DNS names a Service is reached by from inside the cluster. */
export function serviceDnsNames(service: string, namespace: string, clusterDomain = 'cluster.local'): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.${clusterDomain}`];
}
