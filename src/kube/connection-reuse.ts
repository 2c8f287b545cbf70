// @kubernetes/client-node 1.4 builds a new https.Agent for every typed API call
// (KubeConfig.applySecurityAuthentication -> createAgent), so every patch, delete and
// Event pays a TLS handshake and a new SecureContext: about 1 s of CPU in a burst of 50
// quarantines (bench/README.md). This keeps one keep-alive agent per TLS identity
// (server, CA, client certificate): a rotated client certificate gets a new agent.
// createAgent is private in the typings; if a later client-node renames it, the
// KubeConfig is left as it is, so the fallback is the library's own behaviour.
import { createHash } from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';

type AgentFactory = (cluster: { server?: string; proxyUrl?: string } | null, options: https.AgentOptions) => unknown;

export function withConnectionReuse(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createAgent?: AgentFactory };
  const original = target.createAgent;
  if (typeof original !== 'function') return kc;
  const agents = new Map<string, https.Agent>();
  target.createAgent = (cluster, options) => {
    if (!cluster?.server?.startsWith('https:') || cluster.proxyUrl) return original.call(kc, cluster, options);
    const key = createHash('sha256')
      .update(JSON.stringify([cluster.server, options.ca, options.cert, options.key, options.pfx, options.servername, options.rejectUnauthorized]))
      .digest('hex');
    let agent = agents.get(key);
    if (!agent) {
      // HTTP/1.1: one request per socket. Every watch holds one for good, and a burst of
      // 50 quarantines is 50 patches plus ~100 Events at once: with 32 sockets the patches
      // queued behind Events (10,000-pod bench). client-go multiplexes over HTTP/2 instead.
      // One SecureContext for all of them: otherwise every new connection parses the CA,
      // certificate and key again, ~2 ms of CPU each, 0.4 s in a burst of 50 (profile
      // of the 10,000-pod bench). The Agent also resumes TLS sessions.
      const secureContext = tls.createSecureContext({ ca: options.ca, cert: options.cert, key: options.key, pfx: options.pfx, passphrase: options.passphrase });
      agent = new https.Agent({ ...options, secureContext, keepAlive: true, maxSockets: 128 });
      agents.set(key, agent);
    }
    return agent;
  };
  return kc;
}
