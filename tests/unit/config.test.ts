// Reading the configuration: defaults, conversions, and a clear error for a bad value.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, readConfig } from '../../src/core/config.js';

describe('readConfig', () => {
  it('has defaults', () => {
    const c = readConfig({});
    assert.equal(c.server.port, 8443);
    assert.equal(c.quarantine.notReadyGraceMs, 10_000);
    assert.equal(c.quarantine.ttlMs, 24 * 3600 * 1000);
    assert.equal(c.identity.serviceAccountUsername, 'system:serviceaccount:sickbay-system:sickbay');
    assert.deepEqual(c.leaderElection, { enabled: true, leaseName: 'sickbay-controller', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });
  it('names every bad value in one error', () => {
    assert.throws(
      () => readConfig({ SICKBAY_PORT: 'http', SICKBAY_NOT_READY_GRACE: 'soon', SICKBAY_DRY_RUN: 'maybe' }),
      (e: Error) => e instanceof ConfigError && /SICKBAY_PORT="http"/.test(e.message) && /SICKBAY_NOT_READY_GRACE="soon"/.test(e.message) && /SICKBAY_DRY_RUN/.test(e.message),
    );
  });
  it('a quarantine TTL of never (or 0) keeps quarantined pods until a release; 0 deletes nothing (issue 27)', () => {
    assert.equal(readConfig({ SICKBAY_QUARANTINE_TTL: 'never' }).quarantine.ttlMs, 0);
    assert.equal(readConfig({ SICKBAY_QUARANTINE_TTL: '0' }).quarantine.ttlMs, 0);
    assert.equal(readConfig({}).quarantine.ttlMs, 24 * 3600_000);
    assert.throws(() => readConfig({ SICKBAY_QUARANTINE_TTL: 'forever' }), /SICKBAY_QUARANTINE_TTL="forever": not a duration.*or never/);
  });

  it('the scene archive: off without an endpoint; with one, its bucket and credentials are required and its values checked (issue 27)', () => {
    assert.equal(readConfig({}).archive, undefined);
    const base = { SICKBAY_ARCHIVE_ENDPOINT: 'https://s3.example.com/', SICKBAY_ARCHIVE_BUCKET: 'scenes', SICKBAY_ARCHIVE_ACCESS_KEY_ID: 'id', SICKBAY_ARCHIVE_SECRET_ACCESS_KEY: 'secret' };
    assert.deepEqual(readConfig(base).archive, {
      store: { endpoint: 'https://s3.example.com', bucket: 'scenes', prefix: 'sickbay/', region: 'us-east-1', accessKeyId: 'id', secretAccessKey: 'secret', caFile: undefined },
      maxBytes: 2 ** 30,
      maxDelayMs: 3600_000,
      overQuotaKeepMs: 30_000,
    });
    assert.throws(() => readConfig({ SICKBAY_ARCHIVE_ENDPOINT: 'https://s3.example.com' }), (e: Error) => ['BUCKET', 'ACCESS_KEY_ID', 'SECRET_ACCESS_KEY'].every((k) => new RegExp(`SICKBAY_ARCHIVE_${k}=undefined: must be set with SICKBAY_ARCHIVE_ENDPOINT`).test(e.message)));
    assert.throws(() => readConfig({ ...base, SICKBAY_ARCHIVE_ENDPOINT: 's3.example.com' }), /SICKBAY_ARCHIVE_ENDPOINT="s3.example.com": an http\(s\) URL/);
    assert.throws(() => readConfig({ ...base, SICKBAY_ARCHIVE_ENDPOINT: 'https://s3.example.com/scenes' }), /an http\(s\) URL with no path/);
    assert.throws(() => readConfig({ ...base, SICKBAY_ARCHIVE_PREFIX: 'sickbay' }), /SICKBAY_ARCHIVE_PREFIX="sickbay": folders ending in a slash/);
    assert.throws(() => readConfig({ ...base, SICKBAY_ARCHIVE_BUCKET: 'Scenes_2' }), /an S3 bucket name/);
    assert.throws(() => readConfig({ ...base, SICKBAY_ARCHIVE_MAX_SIZE: '10Ki' }), /SICKBAY_ARCHIVE_MAX_SIZE="10Ki": a size of at least 1Mi/);
    assert.equal(readConfig({ ...base, SICKBAY_ARCHIVE_MAX_SIZE: '500Mi', SICKBAY_ARCHIVE_PREFIX: '' }).archive?.maxBytes, 500 * 2 ** 20);
  });
  it("checkpoints: off in the agent until its kubelet's API is set, an https URL; the wait of serve and the kubelet's call are durations (issue 30)", () => {
    const off = readConfig({});
    assert.equal(off.agent.checkpoints.kubeletApi, '');
    assert.equal(off.agent.checkpoints.archiveDir, '/var/lib/kubelet/checkpoints');
    assert.equal(off.agent.checkpoints.timeoutMs, 120_000);
    assert.equal(off.checkpoint.timeoutMs, 180_000);
    const on = readConfig({ SICKBAY_AGENT_KUBELET_API: 'https://10.0.0.7:10250/', SICKBAY_AGENT_KUBELET_INSECURE: 'true', SICKBAY_CHECKPOINT_TIMEOUT: '45s' });
    assert.equal(on.agent.checkpoints.kubeletApi, 'https://10.0.0.7:10250', 'no trailing slash: paths are joined to it');
    assert.equal(on.agent.checkpoints.kubeletInsecure, true);
    assert.equal(on.checkpoint.timeoutMs, 45_000);
    assert.throws(() => readConfig({ SICKBAY_AGENT_KUBELET_API: 'http://10.0.0.7:10250' }), /SICKBAY_AGENT_KUBELET_API="http:\/\/10.0.0.7:10250": the kubelet API as https/);
    assert.throws(() => readConfig({ SICKBAY_AGENT_CHECKPOINT_DIR: 'checkpoints' }), /SICKBAY_AGENT_CHECKPOINT_DIR/);
  });

  it('refuses a renew deadline not shorter than the lease', () => {
    assert.throws(() => readConfig({ SICKBAY_LEASE_DURATION: '10s', SICKBAY_RENEW_DEADLINE: '10s' }), /SICKBAY_RENEW_DEADLINE="10s": must be shorter than SICKBAY_LEASE_DURATION/);
  });
  it('parses durations to milliseconds and every setting to its component', () => {
    const c = readConfig({ SICKBAY_NOT_READY_GRACE: '1.5s', SICKBAY_DRAIN: '250ms', SICKBAY_NEVER_READY_AFTER: '2m', SICKBAY_NODE_MIN_HEALTHY: '60%', SICKBAY_DRY_RUN: 'true', HOSTNAME: 'sickbay-0' });
    assert.equal(c.quarantine.notReadyGraceMs, 1500);
    assert.equal(c.server.drainMs, 250);
    assert.equal(c.neverReady.afterMs, 120_000);
    assert.equal(c.node.minHealthy, 0.6);
    assert.equal(c.identity.host, 'sickbay-0');
    assert.deepEqual([c.injection.dryRun, c.quarantine.dryRun, c.neverReady.dryRun, c.repair.dryRun, c.node.dryRun], [true, true, true, true, true], 'SICKBAY_DRY_RUN reaches every part that acts');
    assert.equal(readConfig({ SICKBAY_NODE_DRY_RUN: 'true' }).quarantine.dryRun, false, 'the node dry run is the node controller\'s only');
  });
  it('reports every bad value of the agent, the registries and the shares in one error', () => {
    assert.throws(
      () => readConfig({ SICKBAY_AGENT_CHECKS: 'kubelet,disk', SICKBAY_AGENT_PROCESSES: 'kubelet@host', SICKBAY_REGISTRIES: '[{"name":""}]', SICKBAY_NODE_MIN_HEALTHY: '150%' }),
      (e: Error) =>
        e instanceof ConfigError &&
        /SICKBAY_AGENT_CHECKS="kubelet,disk": unknown check "disk"/.test(e.message) &&
        /SICKBAY_AGENT_PROCESSES="kubelet@host": not a process spec/.test(e.message) &&
        /SICKBAY_REGISTRIES=.*expected a JSON array/.test(e.message) &&
        /SICKBAY_NODE_MIN_HEALTHY="150%": not a share between 0 and 1/.test(e.message),
    );
  });
});
