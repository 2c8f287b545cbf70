// ZooKeeper client helpers for the tests; the server is dev/zookeeper-server.ts.
import zookeeper from 'node-zookeeper-client';
import net from 'node:net';

export { ZooKeeperServer } from '../../dev/zookeeper-server.js';

type Client = ReturnType<typeof zookeeper.createClient>;

/** A client session of its own, like each provider process has. */
export async function zkSession(connect: string): Promise<Client> {
  // 15 s: a provider's session must outlive a busy machine's pauses, or its ephemeral
  // entries vanish by themselves and a test could take that for sickbay's doing.
  const c = zookeeper.createClient(connect, { sessionTimeout: 15_000 });
  await within(15_000, `a ZooKeeper session with ${connect}`, new Promise<void>((resolve) => {
    c.once('connected', () => resolve());
    c.connect();
  })).catch((err) => {
    c.close();
    throw err;
  });
  return c;
}

/** A test waits on ZooKeeper for a bounded time: a hung call fails with what it waited for. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms)))]).finally(() => clearTimeout(timer));
}

export function mkdirp(c: Client, p: string): Promise<void> {
  return new Promise((resolve, reject) => c.mkdirp(p, (err: unknown) => (err ? reject(err) : resolve())));
}

/** A node of `mode` (ephemeral unless told: a registration lives as long as its session). */
export function createNode(c: Client, p: string, data?: string, mode: number = zookeeper.CreateMode.EPHEMERAL): Promise<void> {
  return new Promise((resolve, reject) =>
    c.create(p, Buffer.from(data ?? ""), mode, (err: unknown) => (err ? reject(err) : resolve())),
  );
}

export function exists(c: Client, p: string): Promise<boolean> {
  return within(5_000, `exists ${p}`, new Promise((resolve, reject) => c.exists(p, (err: unknown, stat: unknown) => (err ? reject(err) : resolve(!!stat)))));
}

/**
 * Registers a Dubbo provider the way Dubbo does: an ephemeral node named by the URL-encoded
 * provider URL (`persistent`: one that outlives its session, as a static registration does,
 * so that only sickbay can have removed it).
 */
export async function registerDubboProvider(c: Client, iface: string, host: string, port = 20880, { persistent = false } = {}): Promise<string> {
  const url = `dubbo://${host}:${port}/${iface}?anyhost=true&application=shop&interface=${iface}&methods=get,put&side=provider&timestamp=${Date.now()}`;
  const dir = `/dubbo/${encodeURIComponent(iface)}/providers`;
  await mkdirp(c, dir);
  const p = `${dir}/${encodeURIComponent(url)}`;
  await createNode(c, p, undefined, persistent ? zookeeper.CreateMode.PERSISTENT : zookeeper.CreateMode.EPHEMERAL);
  return p;
}

/** A Dubbo 3 application-level instance (Curator service discovery). */
export async function registerAppInstance(c: Client, app: string, id: string, address: string, port = 20880): Promise<string> {
  await mkdirp(c, `/services/${app}`);
  const p = `/services/${app}/${id}`;
  await createNode(c, p, JSON.stringify({ name: app, id, address, port, sslPort: null, payload: null, registrationTimeUTC: Date.now(), serviceType: 'DYNAMIC' }));
  return p;
}

/**
 * A TCP relay in front of ZooKeeper: what stands between sickbay and its registry. cut()
 * drops every connection through it and refuses new ones (ZooKeeper unreachable, as a
 * network partition makes it) while the server itself runs on and expires the sessions
 * that stop pinging; restore() lets connections through again.
 */
export class ZooKeeperRelay {
  private readonly sockets = new Set<net.Socket>();
  private cutOff = false;

  private constructor(
    private readonly server: net.Server,
    readonly connect: string,
  ) {}

  static async start(target: string): Promise<ZooKeeperRelay> {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    let relay!: ZooKeeperRelay;
    const server = net.createServer((client) => {
      if (relay.cutOff) return void client.destroy();
      const upstream = net.connect(port, host);
      for (const s of [client, upstream]) {
        relay.sockets.add(s);
        s.on('close', () => relay.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    relay = new ZooKeeperRelay(server, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
    return relay;
  }

  cut() {
    this.cutOff = true;
    for (const s of this.sockets) s.destroy();
  }

  restore() {
    this.cutOff = false;
  }

  stop(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
