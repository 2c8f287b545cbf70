// How the node agent reaches the API server without client-node: its ServiceAccount in a
// pod, or a kubeconfig whose user is a token or a client certificate. A kubeconfig that
// needs more (an exec plugin, an auth provider) is left to client-node's KubeConfig: the
// caller loads it instead (lightAccess returns undefined).
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import type { RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import path from 'node:path';
import yaml from 'js-yaml';
import type { ApiAccess } from './rest.js';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A bound ServiceAccount token is rotated by the kubelet (hourly by default): read again at most this old. */
const TOKEN_REREAD_MS = 60_000;

interface Source {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  tokenFile?: string;
  insecure?: boolean;
  servername?: string;
}

export class LightAccess implements ApiAccess {
  /** One keep-alive agent: a heartbeat every few seconds reuses its connection instead of a TLS handshake each time. */
  private readonly agent = new https.Agent({ keepAlive: true, maxSockets: 4 });
  private token?: { value: string; readAt: number };

  constructor(private readonly s: Source) {}

  getCurrentCluster() {
    return { server: this.s.server };
  }

  async applyToHTTPSOptions(opts: RequestOptions): Promise<void> {
    opts.agent = this.agent;
    if (this.s.ca) opts.ca = this.s.ca;
    if (this.s.cert) opts.cert = this.s.cert;
    if (this.s.key) opts.key = this.s.key;
    if (this.s.insecure) opts.rejectUnauthorized = false;
    if (this.s.servername) opts.servername = this.s.servername;
    const token = this.bearer();
    if (token) opts.headers = { ...(opts.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` };
  }

  private bearer(): string | undefined {
    if (this.s.token) return this.s.token;
    if (!this.s.tokenFile) return undefined;
    if (!this.token || Date.now() - this.token.readAt > TOKEN_REREAD_MS) this.token = { value: readFileSync(this.s.tokenFile, 'utf8').trim(), readAt: Date.now() };
    return this.token.value;
  }
}

interface KubeconfigFile {
  'current-context'?: string;
  clusters?: Array<{ name: string; cluster: Record<string, unknown> }>;
  users?: Array<{ name: string; user?: Record<string, unknown> }>;
  contexts?: Array<{ name: string; context: { cluster: string; user?: string } }>;
}

/**
 * The access kubectl would use, as far as it is a token or a client certificate: `file`,
 * else $KUBECONFIG's first file, else ~/.kube/config, else the pod's ServiceAccount.
 * undefined when the kubeconfig's user needs more than that (the caller uses client-node).
 * Errors say what is missing.
 */
export function lightAccess(file?: string, context?: string): LightAccess | undefined {
  const fromEnv = process.env.KUBECONFIG?.split(path.delimiter).find((f) => f && existsSync(f));
  const home = path.join(homedir(), '.kube', 'config');
  const chosen = file ?? fromEnv ?? (existsSync(home) ? home : undefined);
  if (!chosen) return inCluster();
  if (!existsSync(chosen)) throw new Error(`--kubeconfig ${chosen}: no such file`);
  const doc = yaml.load(readFileSync(chosen, 'utf8')) as KubeconfigFile;
  const ctxName = context ?? doc['current-context'];
  const ctx = doc.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`context ${JSON.stringify(ctxName ?? '')} is not in ${chosen}`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== 'string') throw new Error(`${chosen}: the context ${JSON.stringify(ctxName)} names no cluster with a server`);
  const user = (ctx.user ? doc.users?.find((u) => u.name === ctx.user)?.user : undefined) ?? {};
  if (Object.keys(user).some((k) => !['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data'].includes(k))) return undefined;
  const dir = path.dirname(chosen);
  const bytes = (data: unknown, fileKey: unknown) => (typeof data === 'string' ? Buffer.from(data, 'base64') : typeof fileKey === 'string' ? readFileSync(path.resolve(dir, fileKey)) : undefined);
  return new LightAccess({
    server: cluster.server,
    ca: bytes(cluster['certificate-authority-data'], cluster['certificate-authority']),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    servername: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    cert: bytes(user['client-certificate-data'], user['client-certificate']),
    key: bytes(user['client-key-data'], user['client-key']),
    token: typeof user.token === 'string' ? user.token : undefined,
    tokenFile: typeof user.tokenFile === 'string' ? path.resolve(dir, user.tokenFile) : undefined,
  });
}

function inCluster(): LightAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port || !existsSync(path.join(SA_DIR, 'token'))) {
    throw new Error('no kubeconfig: pass --kubeconfig <file>, set $KUBECONFIG, or create ~/.kube/config (inside a pod, its ServiceAccount is used)');
  }
  return new LightAccess({
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readFileSync(path.join(SA_DIR, 'ca.crt')),
    tokenFile: path.join(SA_DIR, 'token'),
  });
}
