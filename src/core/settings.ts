// How a setting is declared, once: its parser, its default (a string, parsed like any
// value, so the documented default and the one in effect cannot differ) and what it means.
// The configuration's type, its reader and docs/reference/configuration.md all derive from
// the declarations in config.ts. No schema library: the node agent reads these on every
// node, and a schema library was 3 MiB of its anonymous memory (bench/README.md).

export interface Setting<T> {
  /** The value when the variable is unset or empty, as it would be written. */
  default: string;
  /** Markdown for the docs' default column where the default alone would not say it: "(none: checkpoints off)". */
  shown?: string;
  /** Markdown. */
  meaning: string;
  /** The value, or an Error whose message says what was expected. */
  parse(raw: string): T;
}

export type SettingValue<S> = S extends Setting<infer T> ? T : never;

interface Extra {
  shown?: string;
}

const fail = (message: string): never => {
  throw new Error(message);
};

export function text(def: string, meaning: string, o: Extra & { pattern?: RegExp; message?: string; orEmpty?: boolean } = {}): Setting<string> {
  return {
    default: def,
    shown: o.shown,
    meaning,
    parse: (raw) => (o.pattern && !(o.orEmpty && raw === '') && !o.pattern.test(raw) ? fail(o.message ?? `must match ${o.pattern}`) : raw),
  };
}

export function oneOf<const T extends string>(values: readonly T[], def: T, meaning: string, o: Extra = {}): Setting<T> {
  return { default: def, shown: o.shown, meaning, parse: (raw) => ((values as readonly string[]).includes(raw) ? (raw as T) : fail(`one of ${values.join(', ')}`)) };
}

export function num(min: number, max: number, def: string, meaning: string, o: Extra = {}): Setting<number> {
  return {
    default: def,
    shown: o.shown,
    meaning,
    parse: (raw) => {
      const n = raw.trim() === '' ? NaN : Number(raw);
      return Number.isFinite(n) && n >= min && n <= max ? n : fail(`a number from ${min} to ${max}`);
    },
  };
}

const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no']);
export function bool(def: 'true' | 'false', meaning: string, o: Extra = {}): Setting<boolean> {
  return { default: def, shown: o.shown, meaning, parse: (raw) => (TRUE.has(raw) ? true : FALSE.has(raw) ? false : fail('true or false')) };
}

/** "90s", "15m", "24h", "2d" or a number of seconds: in seconds. */
export function parseDuration(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!m) throw new Error(`not a duration: ${JSON.stringify(value)} (use e.g. 30s, 15m, 24h)`);
  const factor = { ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 }[m[2] ?? 's']!;
  return Number(m[1]) * factor;
}

/** A duration, in milliseconds; with `never`, also the word never (0: no end, as 0 is). */
export function duration(def: string, meaning: string, o: Extra & { never?: boolean } = {}): Setting<number> {
  return {
    default: def,
    shown: o.shown,
    meaning,
    parse: (raw) => {
      if (o.never && raw.trim() === 'never') return 0;
      try {
        return Math.round(parseDuration(raw) * 1000);
      } catch (err) {
        return fail(`${(err as Error).message}${o.never ? ', or never' : ''}`);
      }
    },
  };
}

/** "a,b,c": the items, blanks dropped; each checked against `each` when given. */
export function list(def: string, meaning: string, o: Extra & { each?: RegExp; message?: string } = {}): Setting<string[]> {
  return {
    default: def,
    shown: o.shown,
    meaning,
    parse: (raw) => {
      const items = raw.split(',').map((x) => x.trim()).filter(Boolean);
      const bad = o.each && items.find((x) => !o.each!.test(x));
      return bad !== undefined ? fail(`${JSON.stringify(bad)} ${o.message ?? `does not match ${o.each}`}`) : items;
    },
  };
}

/** Any other shape: `parse` throws with what it expected. */
export function custom<T>(def: string, meaning: string, parse: (raw: string) => T, o: Extra = {}): Setting<T> {
  return { default: def, shown: o.shown, meaning, parse };
}

export class ConfigError extends Error {}

/**
 * Every declared setting from `env` (unset or empty: its default), each bad one named in a
 * single error, with its value, as `  NAME="value": what was expected`.
 */
export function readSettings<S extends Record<string, Setting<unknown>>>(settings: S, env: NodeJS.ProcessEnv, check?: (values: { [K in keyof S]: SettingValue<S[K]> }) => Array<[keyof S & string, string]>): { [K in keyof S]: SettingValue<S[K]> } {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, s] of Object.entries(settings)) {
    const raw = env[name];
    try {
      values[name] = s.parse(raw === undefined || raw === '' ? s.default : raw);
    } catch (err) {
      problems.push(`  ${name}=${JSON.stringify(raw)}: ${(err as Error).message}`);
    }
  }
  if (!problems.length && check) {
    for (const [name, message] of check(values as { [K in keyof S]: SettingValue<S[K]> })) problems.push(`  ${name}=${JSON.stringify(env[name])}: ${message}`);
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  return values as { [K in keyof S]: SettingValue<S[K]> };
}

/** The docs' default column: the default in backticks, or what `shown` says, or (none). */
export function shownDefault(s: Setting<unknown>): string {
  return s.shown ?? (s.default === '' ? '(none)' : `\`${s.default}\``);
}
