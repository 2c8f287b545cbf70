// `npm run docs:faults -- <table>`: puts the fault table one run wrote
// (SICKBAY_CHAOS_TABLE=<table> npm test, or npm run chaos) into docs/fault-suite.md, as it
// is: the figures of one run, never rows copied from several. It refuses a table that
// lacks a scenario of tests/support/chaos-scenarios.json or has a row that did not hold.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FAULT_TABLE_END, FAULT_TABLE_START, faultTableProblems } from './fault-table.js';

const file = process.argv[2];
if (!file) throw new Error('usage: npm run docs:faults -- <the file SICKBAY_CHAOS_TABLE named>');
const table = readFileSync(file, 'utf8').trim();
const problems = faultTableProblems(table);
if (problems.length) throw new Error(`${file}: ${problems.join('; ')}`);
const docPath = fileURLToPath(new URL('../docs/fault-suite.md', import.meta.url));
const doc = readFileSync(docPath, 'utf8');
const a = doc.indexOf(FAULT_TABLE_START);
const b = doc.indexOf(FAULT_TABLE_END);
if (a < 0 || b < a) throw new Error(`docs/fault-suite.md has no ${FAULT_TABLE_START} ... ${FAULT_TABLE_END}`);
const when = process.env.SICKBAY_CHAOS_RUN ?? new Date().toISOString().slice(0, 10);
writeFileSync(docPath, `${doc.slice(0, a)}${FAULT_TABLE_START}\nThe figures of one run (${when}, 2 shared cores):\n\n${table}\n${doc.slice(b)}`);
console.log('docs/fault-suite.md: fault table written');
