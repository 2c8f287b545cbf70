// The agent's HTTP port (probes and metrics on every node) has limits like sickbay's own:
// a client that sends slowly or idles is cut, and connections are capped.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { AGENT_SERVER_LIMITS, createAgentServer } from '../../src/agent/command.js';
import { AGENT_METRICS, agentMetricsText } from '../../src/core/agent-metrics.js';

describe("the agent's HTTP server limits (issue 26)", () => {
  it('cuts a client that never finishes its headers, and an idle keep-alive connection', async () => {
    const server = createAgentServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const closedAfter = (send: string) =>
      new Promise<number>((resolve) => {
        const t0 = Date.now();
        const s = net.connect(port, '127.0.0.1', () => s.write(send));
        s.on('data', () => undefined);
        s.on('close', () => resolve(Date.now() - t0));
      });
    try {
      const [slow, idle] = await Promise.all([closedAfter('GET /healthz HTTP/1.1\r\nHost: x\r\n'), closedAfter('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')]);
      assert.ok(slow >= AGENT_SERVER_LIMITS.requestTimeoutMs - 100 && slow < AGENT_SERVER_LIMITS.requestTimeoutMs + 2_000, `a slow client cut after ${slow} ms`);
      assert.ok(idle >= AGENT_SERVER_LIMITS.keepAliveMs - 100 && idle < AGENT_SERVER_LIMITS.keepAliveMs + 2_000, `an idle keep-alive connection closed after ${idle} ms`);
      assert.equal(server.maxConnections, 64);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("the agent's /metrics text", () => {
  it('has each family once with its help and type, a sample per result and check, and escapes label values', () => {
    const text = agentMetricsText({ heartbeats: 12, heartbeatErrors: 3, checks: [{ name: 'kubelet', ok: true }, { name: 'net"work\\', ok: false }] });
    assert.ok(text.endsWith('\n'));
    const lines = text.trimEnd().split('\n');
    for (const f of Object.values(AGENT_METRICS)) {
      assert.equal(lines.filter((l) => l === `# TYPE ${f.name} ${f.type}`).length, 1, f.name);
      assert.equal(lines.filter((l) => l.startsWith(`# HELP ${f.name} `)).length, 1, f.name);
    }
    assert.ok(lines.includes('sickbay_agent_heartbeats_total{result="ok"} 12'));
    assert.ok(lines.includes('sickbay_agent_heartbeats_total{result="error"} 3'));
    assert.ok(lines.includes('sickbay_agent_check_failing{check="kubelet"} 0'));
    assert.ok(lines.includes('sickbay_agent_check_failing{check="net\\"work\\\\"} 1'));
    assert.match(text, /^sickbay_build_info\{version="[^"]+",nodejs="[^"]+"\} 1$/m);
  });
});
