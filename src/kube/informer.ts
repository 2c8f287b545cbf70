// A supervised informer: list (paged) + watch, kept alive whatever happens.
// @kubernetes/client-node's informer stops on any error but 410 and lets a throwing
// handler take the process down; this one restarts with backoff after any error,
// relists on 410 (delivering the differences as events, so deletions missed while
// disconnected are seen), restarts a watch that has gone silent, isolates handlers,
// and replays its cache on a slow resync so level-triggered controllers converge.
import https from 'node:https';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { sleep } from '../util/wait.js';
import { errorDetail, errorText } from './errors.js';
import { type ApiAccess, watchStream } from './rest.js';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string; managedFields?: unknown };
}

export interface Handlers<T> {
  add?(obj: T): void;
  update?(obj: T, old: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions<T = KubeObject, Raw = T> {
  /** Resource name for logs and metrics ("pods"). */
  resource: string;
  /** Collection path, e.g. /api/v1/pods or /apis/apps/v1/replicasets. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Objects per list page, at most (100). A page is parsed in one piece: 500 injected pods
   * are ~4 MB of JSON and held the event loop for ~100 ms (profile of a replica listing
   * 1,000 pods, bench/README.md); 100 hold it for ~20 ms. Pages start smaller and grow
   * while they stay under PAGE_BYTES (see listFromServer).
   */
  pageSize?: number;
  /** A list page not answered within this is abandoned, and the list retried (60 s). */
  listPageTimeoutMs?: number;
  resyncMs?: number;
  /** A watch with no event, not even a bookmark, for this long is restarted. */
  silenceMs?: number;
  log: Logger;
  metrics?: Metrics;
  /**
   * Shrinks each object before it is cached (managedFields are always dropped): at
   * 10,000 pods the cache is most of the process's memory, and most of a pod is spec
   * that no decision reads. The cached type may then be a type of its own (`Raw` is what
   * the API sends), so code that needs what the cache drops cannot compile against it.
   */
  transform?: (obj: Raw) => T;
}

/** A list's first page, in objects; each next one doubles while pages stay under PAGE_BYTES. */
const FIRST_PAGE = 10;
/** What a list page may weigh, about (its JSON): 4 MB is 500 pods of 8 KB, or 4 objects of a megabyte. */
export const PAGE_BYTES = 4 * 2 ** 20;

/** The next page's limit: twice this one's while it weighed under PAGE_BYTES, else scaled down to it (one object at least). */
export function nextPageLimit(limit: number, bytes: number, most: number): number {
  if (bytes <= PAGE_BYTES / 2) return Math.min(most, limit * 2);
  return Math.max(1, Math.min(most, Math.floor((limit * PAGE_BYTES) / bytes)));
}

// resourceVersions are opaque, but etcd-backed ones are integers; only compare those.
function newerOrSame(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) >= BigInt(b);
}

/** key -> one value, and value -> its keys. */
export class Index {
  private readonly keysOf = new Map<string, Set<string>>();
  private readonly valueOf = new Map<string, string>();

  set(key: string, value: string | undefined) {
    const old = this.valueOf.get(key);
    if (old === value) return;
    if (old !== undefined) {
      const keys = this.keysOf.get(old)!;
      keys.delete(key);
      if (!keys.size) this.keysOf.delete(old);
      this.valueOf.delete(key);
    }
    if (value !== undefined) {
      let keys = this.keysOf.get(value);
      if (!keys) this.keysOf.set(value, (keys = new Set()));
      keys.add(key);
      this.valueOf.set(key, value);
    }
  }

  keys(value: string): ReadonlySet<string> {
    return this.keysOf.get(value) ?? EMPTY;
  }
}
const EMPTY: ReadonlySet<string> = new Set();
const LIST_PAGE_TIMEOUT_MS = 60_000;

export const keyOf = (o: KubeObject) => (o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : (o.metadata?.name ?? ''));

export class Informer<T extends KubeObject, Raw extends KubeObject = T> {
  private readonly cache = new Map<string, T>();
  private readonly indexes = new Map<string, { fn: (obj: T) => string | undefined; index: Index }>();
  private readonly handlers: Handlers<T>[] = [];
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private resourceVersion = '';
  private lastEvent = Date.now();
  private endWatch?: () => void;
  private relistWaiters: Array<() => void> = [];

  constructor(
    private readonly kc: ApiAccess,
    private readonly o: InformerOptions<T, Raw>,
  ) {}

  /** Adds handlers; they are removed when `until` aborts (a leadership term's end). */
  on(h: Handlers<T>, until?: AbortSignal) {
    if (until?.aborted) return;
    this.handlers.push(h);
    until?.addEventListener(
      'abort',
      () => {
        const i = this.handlers.indexOf(h);
        if (i >= 0) this.handlers.splice(i, 1);
      },
      { once: true },
    );
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /**
   * Keeps the cache indexed by `fn` (undefined: not in the index), through every change
   * including writeThrough, so lookups by namespace or owner need no scan of the cache.
   */
  addIndex(name: string, fn: (obj: T) => string | undefined) {
    const index = new Index();
    for (const [key, obj] of this.cache) index.set(key, fn(obj));
    this.indexes.set(name, { fn, index });
  }

  /** The cached objects whose index `name` is `value`. */
  byIndex(name: string, value: string): T[] {
    const idx = this.indexes.get(name);
    if (!idx) throw new Error(`${this.o.resource}: no index ${name}`);
    const out: T[] = [];
    for (const key of idx.index.keys(value)) {
      const obj = this.cache.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  private put(key: string, obj: T) {
    this.cache.set(key, obj);
    for (const { fn, index } of this.indexes.values()) index.set(key, fn(obj));
  }

  private remove(key: string) {
    this.cache.delete(key);
    for (const { index } of this.indexes.values()) index.set(key, undefined);
  }

  list(): IterableIterator<T> {
    return this.cache.values();
  }

  get size() {
    return this.cache.size;
  }

  /**
   * Puts an object this process just wrote into the cache, unless the cache already
   * holds a newer version: the next decision sees its own write without waiting for the
   * watch. The watch event that follows is delivered as usual.
   */
  writeThrough(obj: Raw) {
    const key = keyOf(obj);
    const old = this.cache.get(key);
    if (old && newerOrSame(old.metadata?.resourceVersion, obj.metadata?.resourceVersion)) return;
    this.put(key, this.strip(obj));
  }

  /**
   * Drops the current watch and lists afresh; resolves once the new list is in the
   * cache. A replica that becomes leader calls this before acting, so it never acts on
   * a view that may lag (a stalled watch is otherwise only noticed after silenceMs).
   */
  relist(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      this.relistWaiters.push(resolve);
      signal?.addEventListener('abort', () => resolve(), { once: true });
      this.resourceVersion = '';
      this.endWatch?.();
    });
  }

  hasSynced() {
    return this.synced;
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = () => resolve();
      signal?.addEventListener('abort', onAbort, { once: true });
      // Synced: drop the abort listener, so a long-lived signal does not collect them.
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  private dispatch(kind: 'add' | 'update' | 'delete', obj: T, old?: T) {
    for (const h of this.handlers) {
      try {
        if (kind === 'add') h.add?.(obj);
        else if (kind === 'update') h.update?.(obj, old ?? obj);
        else h.delete?.(obj);
      } catch (err) {
        this.o.log.error('informer handler threw; the event is dropped, the informer goes on', {
          resource: this.o.resource,
          key: keyOf(obj),
          error: errorDetail(err),
        });
      }
    }
  }

  private resyncing = false;

  /** Replays the cache to the handlers, 500 objects per turn of the event loop. */
  private async resync() {
    if (this.resyncing) return;
    this.resyncing = true;
    try {
      let n = 0;
      for (const key of [...this.cache.keys()]) {
        const obj = this.cache.get(key); // the current version: the watch may have moved on between turns
        if (obj) this.dispatch('update', obj, obj);
        if (++n % 500 === 0) await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.resyncing = false;
    }
  }

  private strip(obj: Raw): T {
    if (obj.metadata?.managedFields) {
      // A copy without them, not `delete`: an object that lost a property is kept in
      // V8's slower and larger dictionary form.
      const { managedFields: _, ...metadata } = obj.metadata;
      obj = { ...obj, metadata };
    }
    // Without a transform the two types are one (Raw defaults to T).
    return this.o.transform ? this.o.transform(obj) : (obj as unknown as T);
  }

  async run(signal: AbortSignal): Promise<void> {
    let backoff = 500;
    const resync = this.o.resyncMs ? setInterval(() => void this.resync(), this.o.resyncMs) : undefined;
    try {
      while (!signal.aborted) {
        try {
          if (!this.resourceVersion) await this.listFromServer(signal);
          backoff = 500;
          await this.watch(signal);
        } catch (err) {
          if (signal.aborted) break;
          const gone = (err as { code?: number }).code === 410;
          if (gone) this.resourceVersion = '';
          this.o.metrics?.informerRestarts.inc({ resource: this.o.resource });
          this.o.log.warn('watch ended; restarting', { resource: this.o.resource, relist: !this.resourceVersion, backoffMs: gone ? 0 : backoff, error: errorText(err) });
          if (!gone) {
            await sleep(backoff, signal);
            backoff = Math.min(backoff * 2, 30_000);
          }
        }
      }
    } finally {
      clearInterval(resync);
    }
  }

  /** Lists page by page (the event loop breathes between pages) and reconciles the cache. */
  private async listFromServer(signal: AbortSignal) {
    const seen = new Set<string>();
    let cont = '';
    let rv = '';
    // The page's size follows the bytes of the last one: a page is held whole four times
    // over while it is read (chunks, one buffer, the text, the objects), and 100 objects
    // of a megabyte (a Deployment with an inlined blob: anyone who may create one can) made
    // each page 400 MB and a replica of a cluster with 300 of them 731 MB resident
    // (tests/chaos/cache-memory.test.ts). Small first, doubling while under PAGE_BYTES.
    const most = this.o.pageSize ?? 100;
    let limit = Math.min(FIRST_PAGE, most);
    do {
      const q = new URLSearchParams({ limit: String(limit) });
      if (cont) q.set('continue', cont);
      if (this.o.labelSelector) q.set('labelSelector', this.o.labelSelector);
      if (this.o.fieldSelector) q.set('fieldSelector', this.o.fieldSelector);
      const { value, bytes } = await this.fetchJson(`${this.o.path}?${q}`, signal);
      const page = value as { items?: Raw[]; metadata?: { continue?: string; resourceVersion?: string } };
      limit = nextPageLimit(limit, bytes, most);
      for (const item of page.items ?? []) {
        const obj = this.strip(item);
        const key = keyOf(obj);
        seen.add(key);
        const old = this.cache.get(key);
        this.put(key, obj);
        if (!old) this.dispatch('add', obj);
        else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.dispatch('update', obj, old);
      }
      cont = page.metadata?.continue ?? '';
      rv = page.metadata?.resourceVersion ?? rv;
      await new Promise((r) => setImmediate(r));
    } while (cont && !signal.aborted);
    for (const [key, obj] of this.cache) {
      if (!seen.has(key)) {
        this.remove(key);
        this.dispatch('delete', obj);
      }
    }
    this.resourceVersion = rv;
    for (const w of this.relistWaiters.splice(0)) w();
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private watch(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const watchAbort = new AbortController();
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearInterval(silence);
        signal.removeEventListener('abort', onAbort);
        // Not from inside the stream's own 'data' handler (an ERROR event ends the watch
        // there): on Node 20 aborting the request in it raised an AbortError nothing could
        // catch, and the process exits on one (tests/unit/informer-stream.test.ts).
        setImmediate(() => watchAbort.abort());
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => finish();
      signal.addEventListener('abort', onAbort, { once: true });
      // relist() ends the watch; the loop lists again because resourceVersion is empty.
      this.endWatch = () => finish();
      this.lastEvent = Date.now();
      const silenceMs = this.o.silenceMs ?? 180_000;
      const silence = setInterval(() => {
        if (Date.now() - this.lastEvent > silenceMs) finish(new Error(`no event or bookmark for ${silenceMs} ms`));
      }, Math.min(silenceMs, 5_000));
      const query: Record<string, string | number | boolean> = {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        // The server ends the watch after a while; we resume from the last version.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
      };
      if (this.o.labelSelector) query.labelSelector = this.o.labelSelector;
      if (this.o.fieldSelector) query.fieldSelector = this.o.fieldSelector;
      watchStream(
        this.kc,
        this.o.path,
        query,
        (phase, event) => {
          // Lines already read when the watch ended (an ERROR, a relist) are not applied.
          if (settled) return;
          const obj = event as Raw & { code?: number; message?: string };
          this.lastEvent = Date.now();
          if (phase === 'ERROR') {
            return finish(Object.assign(new Error(obj.message ?? 'watch error'), { code: obj.code }));
          }
          const rv = obj.metadata?.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (phase === 'BOOKMARK') return;
          const o = this.strip(obj);
          const key = keyOf(o);
          const old = this.cache.get(key);
          if (phase === 'DELETED') {
            this.remove(key);
            this.dispatch('delete', o);
          } else {
            this.put(key, o);
            this.dispatch(old ? 'update' : 'add', o, old);
          }
        },
        watchAbort.signal,
      ).then(() => finish(), finish);
    });
  }

  /** One list page; a page the API server has not sent within LIST_PAGE_TIMEOUT_MS is abandoned and the list retried. */
  private async fetchJson(path: string, signal: AbortSignal): Promise<{ value: unknown; bytes: number }> {
    const timeoutMs = this.o.listPageTimeoutMs ?? LIST_PAGE_TIMEOUT_MS;
    const deadline = AbortSignal.timeout(timeoutMs);
    const opts: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' }, signal: AbortSignal.any([signal, deadline]) };
    await this.kc.applyToHTTPSOptions(opts);
    const url = new URL(path, this.kc.getCurrentCluster()!.server);
    return new Promise((resolve, reject) => {
      const req = https.request(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks.splice(0)).toString('utf8');
          if (res.statusCode === 200) {
            try {
              resolve({ value: JSON.parse(body), bytes: body.length });
            } catch (err) {
              reject(err);
            }
          } else reject(Object.assign(new Error(`GET ${path}: HTTP ${res.statusCode} ${body.slice(0, 300)}`), { code: res.statusCode }));
        });
        res.on('error', reject);
      });
      req.on('error', (err) => reject(deadline.aborted && !signal.aborted ? new Error(`GET ${path}: no answer within ${timeoutMs} ms`) : err));
      req.end();
    });
  }
}
