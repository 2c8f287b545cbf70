// The configuration table of docs/reference/configuration.md (`npm run docs`; a test
// checks the page is current), from the declarations in config.ts: each variable, its
// default as declared (or as its `shown` says) and what it means. Variables declared one
// after another with the same meaning share a row (a certificate and its key).
import { SETTINGS } from './config.js';
import { type Setting, shownDefault } from './settings.js';

export interface ConfigRow {
  vars: string[];
  /** Markdown: each variable's default, or (none). */
  default: string;
  meaning: string;
}

export function configRows(settings: Record<string, Setting<unknown>> = SETTINGS): ConfigRow[] {
  const rows: Array<ConfigRow & { defaults: string[] }> = [];
  for (const [name, s] of Object.entries(settings)) {
    const last = rows.at(-1);
    if (last && last.meaning === s.meaning) {
      last.vars.push(name);
      last.defaults.push(shownDefault(s));
    } else {
      rows.push({ vars: [name], defaults: [shownDefault(s)], default: '', meaning: s.meaning });
    }
  }
  return rows.map(({ defaults, ...r }) => ({ ...r, default: defaults.every((d) => d === '(none)') ? '(none)' : defaults.join(', ') }));
}

/** The configuration reference's table. */
export function configTable(): string {
  const rows = configRows().map((d) => `| ${d.vars.map((v) => `\`${v}\``).join(', ')} | ${d.default} | ${d.meaning} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
