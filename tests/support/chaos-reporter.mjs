// A node:test reporter (plain JavaScript: reporters load before tsx) that prints the
// fault suite's table once every file has run: one line per row the scenarios emitted
// (tests/support/chaos.ts) and, under `npm run chaos`, the scenarios that did not run.
// It prints nothing when no row was emitted. SICKBAY_CHAOS_TABLE=<file> also writes it there.
import { readFileSync, writeFileSync } from 'node:fs';

const TAG = 'sickbay-chaos ';
const SCENARIOS = JSON.parse(readFileSync(new URL('./chaos-scenarios.json', import.meta.url), 'utf8'));
const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderTable(rows, expectAll) {
  const lines = ['| scenario | load | fault | outcome | held | figures |', '|---|---|---|---|---|---|'];
  const ordered = [...rows].sort((a, b) => SCENARIOS.indexOf(a.scenario) - SCENARIOS.indexOf(b.scenario));
  for (const r of ordered) {
    const figures = [...r.figures, ...(r.error ? [`FAILED: ${r.error}`] : [])].join('; ');
    lines.push(`| ${cell(r.scenario)} | ${cell(r.load)} | ${cell(r.fault)} | ${cell(r.outcome)} | ${r.held ? 'yes' : '**NO**'} | ${cell(figures)} |`);
  }
  if (expectAll) for (const s of SCENARIOS.filter((s) => !rows.some((r) => r.scenario === s))) lines.push(`| ${cell(s)} | | | | **did not run** | |`);
  return lines.join('\n');
}

function report(rows) {
  const table = renderTable(rows, process.env.SICKBAY_CHAOS_ALL === '1');
  if (process.env.SICKBAY_CHAOS_TABLE) writeFileSync(process.env.SICKBAY_CHAOS_TABLE, `${table}\n`);
  return `\n# Fault suite: ${rows.filter((r) => r.held).length} of ${rows.length} rows held\n\n${table}\n\n`;
}

export default async function* chaosReporter(source) {
  const rows = [];
  let printed = false;
  for await (const event of source) {
    // The run's own plan (no file, nesting 0) comes once every file is done; with
    // --test-force-exit the process may exit before the stream ends, so print here.
    if (event.type === 'test:plan' && event.data.nesting === 0 && !event.data.file && rows.length && !printed) {
      printed = true;
      yield report(rows);
    }
    const message = event.type === 'test:diagnostic' ? event.data.message : undefined;
    if (typeof message !== 'string' || !message.startsWith(TAG)) continue;
    try {
      rows.push(JSON.parse(message.slice(TAG.length)));
    } catch {
      // not a row
    }
  }
  if (rows.length && !printed) yield report(rows);
}
