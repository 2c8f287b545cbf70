// The node agent's own kubeconfig reading: what it takes itself, and what it leaves to client-node.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { lightAccess } from '../../src/kube/light-config.js';

function kubeconfig(user: Record<string, unknown>, cluster: Record<string, unknown> = { server: 'https://10.0.0.1:6443', 'certificate-authority-data': Buffer.from('CA').toString('base64') }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'light-config-'));
  const file = path.join(dir, 'config');
  writeFileSync(
    file,
    JSON.stringify({
      'current-context': 'main',
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user }],
      contexts: [
        { name: 'main', context: { cluster: 'c', user: 'u' } },
        { name: 'other', context: { cluster: 'c' } },
      ],
    }),
  );
  return file;
}

async function options(file: string, context?: string): Promise<RequestOptions> {
  const access = lightAccess(file, context);
  assert.ok(access, 'taken by the light access');
  const opts: RequestOptions = { headers: { accept: 'application/json' } };
  await access.applyToHTTPSOptions(opts);
  return opts;
}

describe("the agent's kubeconfig", () => {
  it('takes a token, the CA, and keeps the headers it was given', async () => {
    const opts = await options(kubeconfig({ token: 'secret' }));
    assert.equal((opts.headers as Record<string, string>).authorization, 'Bearer secret');
    assert.equal((opts.headers as Record<string, string>).accept, 'application/json');
    assert.equal(opts.ca?.toString(), 'CA');
  });

  it('reads client certificate files relative to the kubeconfig, as kubectl does', async () => {
    const file = kubeconfig({ 'client-certificate': 'me.crt', 'client-key': 'me.key' });
    writeFileSync(path.join(path.dirname(file), 'me.crt'), 'CERT');
    writeFileSync(path.join(path.dirname(file), 'me.key'), 'KEY');
    const opts = await options(file);
    assert.equal(opts.cert?.toString(), 'CERT');
    assert.equal(opts.key?.toString(), 'KEY');
    assert.equal((opts.headers as Record<string, string>).authorization, undefined);
  });

  it('reads a token file again once it may have been rotated, not on every call', async () => {
    const file = kubeconfig({ tokenFile: 'token' });
    writeFileSync(path.join(path.dirname(file), 'token'), 'first\n');
    const access = lightAccess(file)!;
    const bearer = async () => {
      const o: RequestOptions = {};
      await access.applyToHTTPSOptions(o);
      return (o.headers as Record<string, string>).authorization;
    };
    assert.equal(await bearer(), 'Bearer first');
    writeFileSync(path.join(path.dirname(file), 'token'), 'second\n');
    assert.equal(await bearer(), 'Bearer first', 'read at most once a minute');
  });

  it('leaves an exec plugin or an auth provider to client-node', () => {
    assert.equal(lightAccess(kubeconfig({ exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1' } })), undefined);
    assert.equal(lightAccess(kubeconfig({ 'auth-provider': { name: 'oidc' } })), undefined);
  });

  it('names what is missing', () => {
    assert.throws(() => lightAccess('/nonexistent/config'), /--kubeconfig \/nonexistent\/config: no such file/);
    assert.throws(() => lightAccess(kubeconfig({ token: 't' }), 'elsewhere'), /context "elsewhere" is not in/);
    assert.throws(() => lightAccess(kubeconfig({ token: 't' }, { 'certificate-authority-data': 'x' })), /names no cluster with a server/);
  });

  it('honours insecure-skip-tls-verify and tls-server-name', async () => {
    const opts = await options(kubeconfig({ token: 't' }, { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true, 'tls-server-name': 'kubernetes' }));
    assert.equal(opts.rejectUnauthorized, false);
    assert.equal(opts.servername, 'kubernetes');
  });
});
