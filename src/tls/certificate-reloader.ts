// Serves whatever certificate the files hold now. cert-manager rotates a mounted Secret
// by swapping a symlink, so the folder is watched (not the files) and polled as a
// backstop. A half-written or mismatched pair is never served: the old one stays.
import { readFileSync, type FSWatcher, watch } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';

export interface KeyPairPem {
  cert: string;
  key: string;
}

export class CertificateReloader {
  private current: KeyPairPem;
  private watchers: FSWatcher[] = [];
  private poll?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;

  constructor(
    private readonly certFile: string,
    private readonly keyFile: string,
    private readonly onChange: (pair: KeyPairPem) => void,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
    private readonly pollMs = 10_000,
  ) {
    this.current = this.load();
  }

  /** The pair in force; throws at start-up if the files are missing or do not match. */
  get pair(): KeyPairPem {
    return this.current;
  }

  private load(): KeyPairPem {
    const pair = { cert: readFileSync(this.certFile, 'utf8'), key: readFileSync(this.keyFile, 'utf8') };
    createSecureContext(pair); // throws on a key that does not match its certificate
    return pair;
  }

  start() {
    const dirs = new Set([path.dirname(path.resolve(this.certFile)), path.dirname(path.resolve(this.keyFile))]);
    for (const dir of dirs) {
      try {
        const w = watch(dir, () => this.schedule());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch (err) {
        this.log.warn('cannot watch certificate folder; polling only', { dir, error: String(err) });
      }
    }
    this.poll = setInterval(() => this.check(), this.pollMs);
    this.poll.unref();
  }

  private schedule() {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.check(), 100);
    this.debounce.unref();
  }

  /** Re-reads the files; returns true when a new pair went into service. */
  check(): boolean {
    let next: KeyPairPem;
    try {
      next = this.load();
    } catch (err) {
      this.metrics?.certReloads.inc({ result: 'invalid' });
      this.log.warn('certificate files unreadable or mismatched; keeping the current pair', { error: (err as Error).message });
      return false;
    }
    if (next.cert === this.current.cert && next.key === this.current.key) return false;
    this.current = next;
    this.onChange(next);
    this.metrics?.certReloads.inc({ result: 'ok' });
    this.log.info('serving certificate reloaded', { certFile: this.certFile });
    return true;
  }

  stop() {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    clearInterval(this.poll);
    clearTimeout(this.debounce);
  }
}
