// Removes a quarantined pod from ZooKeeper service registries, and keeps removing it:
// the app inside may still hold its session and register again (Dubbo re-registers on
// a new session, Curator on reconnect). Only nodes whose address is the pod's are ever
// deleted (and, for a pod that shares its node's address, whose port is one the pod
// declares); nothing is written or recreated.
//
// Layouts:
// - Dubbo interface level: /<root>/<URL-encoded interface>/providers/<URL-encoded provider URL>
// - Dubbo 3 application level (Curator service discovery): /<servicesRoot>/<app>/<id>,
//   whose JSON payload holds "address".
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import zookeeper from 'node-zookeeper-client';
import { withDeadline } from '../util/wait.js';

export interface RegistryEntry {
  registry: string;
  path: string;
}

/**
 * Whose registrations to remove: the pod's address, and for a pod that shares its node's
 * address (hostNetwork) the ports it declares, so other processes on that node keep theirs.
 */
export interface RegistryTarget {
  address: string;
  ports?: number[];
}

export const targetKey = (t: RegistryTarget) => (t.ports ? `${t.address} ports ${[...t.ports].sort((a, b) => a - b).join(',')}` : t.address);

/** Whether a registration at host:port is the target's. */
export function isTargets(t: RegistryTarget, host: string, port: number | undefined): boolean {
  if (host.replace(/^\[|\]$/g, '') !== t.address) return false;
  return !t.ports || (port !== undefined && t.ports.includes(port));
}

export interface ServiceRegistry {
  readonly name: string;
  /** Removes every entry of `target` now; afterwards removes re-registrations until stop. */
  deregister(target: RegistryTarget, onRemoved: (entries: RegistryEntry[]) => void): Promise<RegistryEntry[]>;
  stop(target: RegistryTarget): void;
  close(): void;
}

export interface ZooKeeperRegistryOptions {
  name: string;
  /** host:port[,host:port...][/chroot] */
  connect: string;
  /** user:password for digest auth. */
  digest?: string;
  /** Interface-level roots (default ["/dubbo"]). Empty: that layout is off. */
  interfaceRoots?: string[];
  /** Application-level root (default "/services"); empty string: that layout is off. */
  servicesRoot?: string;
  sessionTimeoutMs?: number;
  /** How long one operation may take before it counts as failed (ZooKeeper down). */
  operationTimeoutMs?: number;
  /** Told when ZooKeeper expired the session (its watches died with it; they are re-armed). */
  onSessionExpired?: () => void;
}

type Client = ReturnType<typeof zookeeper.createClient>;

const HARDENED = Symbol('sickbay.hardened');

/**
 * node-zookeeper-client 1.1.3 parses the server's bytes in a socket 'data' listener and
 * throws from it on bytes it cannot place (seen: "Unknown code: 1071251457" when a
 * ZooKeeper that was stopped for ~20 s resumes and answers the connections that
 * sickbay had given up on and closed meanwhile). A throw there is an uncaught exception:
 * the whole process would die because a registry came back. The parser is wrapped so that
 * such bytes drop the connection instead, which the library already treats as a
 * connection loss (pending calls fail, a live client reconnects, a closing one closes).
 * The listener is bound at connect(), so patching the prototype before then covers it.
 * Known upstream and open: alexguan/node-zookeeper-client issues 23 and 70 (the same
 * "Unknown code" throw, with ZooKeeper offline and back); pull request 5, which would have
 * emitted an error event instead, was closed unmerged.
 */
function hardenParser(client: Client) {
  const manager = (client as unknown as { connectionManager?: object }).connectionManager;
  const proto = manager && (Object.getPrototypeOf(manager) as Record<PropertyKey, unknown>);
  if (!proto || proto[HARDENED] || typeof proto.onSocketData !== 'function') return;
  const parse = proto.onSocketData as (this: unknown, buffer: Buffer) => void;
  proto.onSocketData = function (this: { pendingBuffer: Buffer | null; socket?: { destroy(): void } }, buffer: Buffer) {
    try {
      parse.call(this, buffer);
    } catch {
      this.pendingBuffer = null;
      this.socket?.destroy();
    }
  };
  proto[HARDENED] = true;
}

/** host and port of a Dubbo provider node's URL. */
function endpointOf(entryName: string): { host: string; port?: number } | undefined {
  try {
    const url = new URL(decodeURIComponent(entryName));
    return { host: url.hostname, port: url.port ? Number(url.port) : undefined }; // isTargets drops IPv6 brackets
  } catch {
    return undefined;
  }
}

const join = (...parts: string[]) => `/${parts.map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')}`;

export class ZooKeeperRegistry implements ServiceRegistry {
  readonly name: string;
  private client?: Client;
  private connecting?: Promise<Client>;
  private readonly targets = new Map<string, RegistryTarget>();
  private readonly listeners = new Map<string, (entries: RegistryEntry[]) => void>();
  private readonly watched = new Set<string>();
  /** Set while a lost session's watches wait to be armed again. */
  private rearming?: NodeJS.Timeout;
  private rearmDelayMs = 0;
  private closed = false;

  constructor(private readonly o: ZooKeeperRegistryOptions) {
    this.name = o.name;
  }

  private get opTimeout() {
    return this.o.operationTimeoutMs ?? 5_000;
  }

  private connection(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= new Promise<Client>((resolve, reject) => {
      const client = zookeeper.createClient(this.o.connect, { sessionTimeout: this.o.sessionTimeoutMs ?? 10_000, spinDelay: 500, retries: 0 });
      hardenParser(client);
      const timer = setTimeout(() => {
        client.close();
        this.connecting = undefined;
        // Say why when the cause is a name that does not resolve (the client only retries).
        void unresolved(this.o.connect).then((names) =>
          reject(new Error(`ZooKeeper ${this.o.connect}: no connection within ${this.opTimeout} ms${names.length ? `; ${names.join(', ')} ${names.length > 1 ? 'do' : 'does'} not resolve` : ''}`)),
        );
      }, this.opTimeout);
      client.once('connected', () => {
        clearTimeout(timer);
        if (this.o.digest) client.addAuthInfo('digest', Buffer.from(this.o.digest));
        this.client = client;
        this.connecting = undefined;
        this.watched.clear(); // watches belong to the session
        resolve(client);
      });
      // A lost session loses its watches: drop the client; the next call reconnects and re-arms.
      client.on('state', (state: { name?: string }) => {
        if (state?.name === 'EXPIRED' || state?.name === 'AUTH_FAILED') {
          if (state.name === 'EXPIRED') this.o.onSessionExpired?.();
          if (this.client === client) this.client = undefined;
          this.watched.clear();
          client.close();
          this.rearm();
        }
      });
      // A disconnect is left to the client: it reconnects by itself and keeps the session
      // (and its watches) if the server comes back in time; meanwhile calls time out.
      // Closing it here would not stop it: the library has already decided to retry.
      client.connect();
    });
    return this.connecting;
  }

  private call<T>(what: string, fn: (c: Client, cb: (err: unknown, v?: T) => void) => void): Promise<T> {
    return this.connection().then(
      (c) =>
        new Promise<T>((resolve, reject) => {
          const timer = setTimeout(() => {
            // No answer: the connection is as good as dead (the server went away, or came
            // back and the library is still waiting out its reconnect). Start over with a
            // fresh session on the next call instead of waiting on this one.
            if (this.client === c) {
              this.client = undefined;
              this.watched.clear();
              c.close();
              this.rearm();
            }
            reject(new Error(`ZooKeeper ${what}: no answer within ${this.opTimeout} ms`));
          }, this.opTimeout);
          fn(c, (err, v) => {
            clearTimeout(timer);
            if (err) reject(err instanceof Error ? err : new Error(`ZooKeeper ${what}: ${String(err)}`));
            else resolve(v as T);
          });
        }),
    );
  }

  private children(path: string, watch: boolean): Promise<string[]> {
    return this.call<string[]>(`list ${path}`, (c, cb) => {
      const done = (err: unknown, children?: string[]) => (isNoNode(err) ? cb(null, []) : cb(err, children));
      if (watch && !this.watched.has(path)) {
        this.watched.add(path);
        c.getChildren(
          path,
          () => {
            // One-shot watch: re-arm it by rescanning this path for every watched address.
            this.watched.delete(path);
            void this.rescan(path).catch(() => undefined);
          },
          done,
        );
      } else c.getChildren(path, done);
    });
  }

  private data(path: string): Promise<Buffer | undefined> {
    return this.call<Buffer | undefined>(`read ${path}`, (c, cb) => c.getData(path, (err: unknown, d?: Buffer) => (isNoNode(err) ? cb(null, undefined) : cb(err, d ?? undefined))));
  }

  private remove(path: string): Promise<boolean> {
    return this.call<boolean>(`delete ${path}`, (c, cb) => c.remove(path, -1, (err: unknown) => (isNoNode(err) ? cb(null, false) : err ? cb(err) : cb(null, true))));
  }

  private interfaceRoots() {
    return this.o.interfaceRoots ?? ['/dubbo'];
  }

  private servicesRoot() {
    return this.o.servicesRoot ?? '/services';
  }

  /** Scans one registry path (or everything) and deletes the entries of watched targets. */
  private async rescan(path?: string): Promise<RegistryEntry[]> {
    const removed: RegistryEntry[] = [];
    const targets = [...this.targets.values()];
    const anyTargets = (host: string, ports: (number | null | undefined)[]) => targets.some((t) => ports.some((p) => isTargets(t, host, p ?? undefined)));
    if (targets.length === 0) return removed;
    const del = async (p: string) => {
      if (await this.remove(p)) removed.push({ registry: this.name, path: p });
    };
    const scanProviders = async (providersPath: string) => {
      for (const child of await this.children(providersPath, true)) {
        const at = endpointOf(child);
        if (at && anyTargets(at.host, [at.port])) await del(join(providersPath, child));
      }
    };
    const scanApp = async (appPath: string) => {
      for (const id of await this.children(appPath, true)) {
        const raw = await this.data(join(appPath, id));
        if (!raw) continue;
        try {
          const payload = JSON.parse(raw.toString('utf8')) as { address?: string; port?: number | null; sslPort?: number | null };
          if (payload.address && anyTargets(payload.address, [payload.port, payload.sslPort])) await del(join(appPath, id));
        } catch {
          // not a Curator ServiceInstance: not ours to judge
        }
      }
    };
    for (const root of this.interfaceRoots()) {
      if (path && !path.startsWith(root)) continue;
      if (path?.endsWith('/providers')) {
        await scanProviders(path);
        continue;
      }
      for (const iface of await this.children(root, true)) await scanProviders(join(root, iface, 'providers'));
    }
    const services = this.servicesRoot();
    if (services && (!path || path.startsWith(services))) {
      if (path && path !== services) await scanApp(path);
      else for (const app of await this.children(services, true)) await scanApp(join(services, app));
    }
    if (removed.length > 0 && path) {
      for (const listener of this.listeners.values()) listener(removed);
    }
    return removed;
  }

  /**
   * The watches died with their session: without them a quarantined pod that registers
   * again would get traffic. A new session scans everything again, which removes what
   * came back meanwhile and arms the watches anew; it retries (1 s, doubling to 30 s)
   * until ZooKeeper answers.
   */
  private rearm() {
    if (this.rearming || this.closed || this.targets.size === 0) return;
    this.rearming = setTimeout(() => {
      this.rearming = undefined;
      this.rescan().then(
        (removed) => {
          this.rearmDelayMs = 0;
          if (removed.length > 0) for (const listener of this.listeners.values()) listener(removed);
        },
        () => {
          this.rearmDelayMs = Math.min(Math.max(1_000, this.rearmDelayMs * 2), 30_000);
          this.rearm();
        },
      );
    }, this.rearmDelayMs);
    this.rearming.unref();
  }

  /** The current session (id and password), or undefined when there is none. */
  session(): { id: Buffer; password: Buffer } | undefined {
    return this.client ? { id: this.client.getSessionId(), password: this.client.getSessionPassword() } : undefined;
  }

  async deregister(target: RegistryTarget, onRemoved: (entries: RegistryEntry[]) => void): Promise<RegistryEntry[]> {
    this.targets.set(targetKey(target), target);
    this.listeners.set(targetKey(target), onRemoved);
    return this.rescan();
  }

  stop(target: RegistryTarget) {
    this.targets.delete(targetKey(target));
    this.listeners.delete(targetKey(target));
  }

  close() {
    this.closed = true;
    clearTimeout(this.rearming);
    this.rearming = undefined;
    this.targets.clear();
    this.client?.close();
    this.client = undefined;
  }
}

function isNoNode(err: unknown): boolean {
  return !!err && (err as { getCode?: () => number }).getCode?.() === zookeeper.Exception.NO_NODE;
}

/** The hosts of a connect string ("a:2181,b:2181/chroot") that do not resolve, each with the resolver's code. */
async function unresolved(connect: string): Promise<string[]> {
  const hosts = connect.split('/')[0]!.split(',').map((h) => h.trim().replace(/:\d+$/, '').replace(/^\[|\]$/g, '')).filter(Boolean);
  const out: string[] = [];
  for (const host of hosts) {
    if (isIP(host)) continue;
    try {
      await withDeadline(lookup(host), 2_000, `lookup of ${host}`);
    } catch (err) {
      out.push(`${host} (${(err as { code?: string }).code ?? (err as Error).message})`);
    }
  }
  return out;
}
