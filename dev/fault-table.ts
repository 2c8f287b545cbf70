// The fault table of docs/fault-suite.md: where it sits, and what makes it whole (one row
// per scenario of tests/support/chaos-scenarios.json, in that order, each held).
import { readFileSync } from 'node:fs';

export const FAULT_TABLE_START = '<!-- fault table: one run, written by npm run docs:faults -->';
export const FAULT_TABLE_END = '<!-- end of fault table -->';

export const faultScenarios = (): string[] => JSON.parse(readFileSync(new URL('../tests/support/chaos-scenarios.json', import.meta.url), 'utf8')) as string[];

/** The scenario of each row of a fault table, in order. */
export function tableScenarios(table: string): { scenario: string; held: string }[] {
  return table
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| scenario |'))
    .map((l) => {
      const cells = l.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
      return { scenario: cells[1]!, held: cells[5]! };
    });
}

/** What is wrong with a table: a scenario missing, one it does not know, one out of order, a row not held. */
export function faultTableProblems(table: string): string[] {
  const want = faultScenarios();
  const rows = tableScenarios(table);
  const got = rows.map((r) => r.scenario);
  const problems: string[] = [];
  for (const s of want) if (!got.includes(s)) problems.push(`no row for "${s}"`);
  for (const s of got) if (!want.includes(s)) problems.push(`a row for "${s}", which no scenario has`);
  if (!problems.length && got.join('\n') !== want.join('\n')) problems.push('rows out of the order of chaos-scenarios.json');
  for (const r of rows) if (r.held !== 'yes') problems.push(`"${r.scenario}" held: ${r.held}`);
  return problems;
}
