// The docs stay true: the reference pages are the ones generated from the code (npm run
// docs), the configuration reference documents every variable sickbay reads exactly once
// with the schema's defaults, every Event reason listed is one the code writes, the README
// stays short, and every link between the pages leads somewhere.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../../src/core/config.js';
import { configRows } from '../../src/core/config-docs.js';
import { readSettings, type Setting } from '../../src/core/settings.js';
import { PUBLIC_NAMES } from '../../src/core/contract.js';
import { EVENT_REASONS } from '../../src/core/event-reasons.js';
import * as names from '../../src/core/names.js';
import { FAULT_TABLE_END, FAULT_TABLE_START, faultScenarios, faultTableProblems } from '../../dev/fault-table.js';
import { referenceDocs } from '../../dev/reference-docs.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
const sources = (dir: string): string[] =>
  readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
const markdown = ['README.md', 'SECURITY.md', 'CHANGELOG.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), ...Object.keys(referenceDocs()).map((f) => `docs/${f}`)];

describe('docs', () => {
  it('the reference pages are the ones generated from the code (npm run docs)', () => {
    for (const [file, text] of Object.entries(referenceDocs())) assert.equal(read(`docs/${file}`), text, `docs/${file} is stale: run npm run docs`);
  });

  it('the README is short and names the two commands; the contract is in the repository', () => {
    const readme = read('README.md');
    assert.ok(readme.split('\n').length <= 200, `README.md has ${readme.split('\n').length} lines`);
    assert.match(readme, /npm ci && npm start/);
    assert.match(readme, /npm ci && npm test/);
    for (const f of markdown) assert.doesNotMatch(read(f), /\.\.\/shared\//, `${f} links outside the repository`);
    assert.match(read('.ci/run'), /npm test/);
  });

  it('every relative link leads to a file, and every #anchor to a heading there', () => {
    const slug = (h: string) => h.trim().toLowerCase().replace(/[^\w\s-]/g, '').replace(/\s/g, '-');
    for (const f of markdown) {
      for (const m of read(f).matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1]!;
        if (/^[a-z]+:/.test(link)) continue;
        const [file, anchor] = link.split('#') as [string, string | undefined];
        const target = file ? path.normalize(path.join(path.dirname(f), file)) : f;
        assert.ok(existsSync(path.join(root, target)), `${f}: ${link} leads nowhere`);
        if (anchor && target.endsWith('.md')) {
          const headings = [...read(target).matchAll(/^#+ (.*)$/gm)].map((h) => slug(h[1]!));
          assert.ok(headings.includes(anchor), `${f}: ${link}: no heading #${anchor} in ${target}`);
        }
      }
    }
  });

  it('LICENSE is the license package.json names; upgrades are not recommended with --reuse-values', () => {
    const pkg = JSON.parse(read('package.json')) as { license: string };
    assert.equal(pkg.license, 'Apache-2.0');
    assert.match(read('LICENSE'), /Apache License\s+Version 2\.0, January 2004/);
    for (const f of markdown) for (const l of read(f).split('\n')) if (/helm upgrade .*--reuse-values/.test(l) && !/--reset-then-reuse-values/.test(l)) assert.fail(`${f}: ${l}`);
  });

  it('every Event reason listed is written by the code, and every public name of src/core/names.ts is listed', () => {
    const code = sources('src').filter((f) => !f.endsWith('event-reasons.ts') && !f.startsWith('dev/')).map(read).join('\n');
    for (const reason of Object.keys(EVENT_REASONS)) assert.ok(code.includes(`'${reason}'`), `${reason} is listed but nothing writes it`);
    const listed = new Set(PUBLIC_NAMES.map((n) => n.key));
    for (const [k, v] of Object.entries(names)) {
      if (!/^(ANN|LABEL|NODE_TAINT)_/.test(k) || typeof v !== 'string') continue;
      assert.ok(listed.has(v), `${k} (${v}) is not in src/core/contract.ts`);
    }
  });

  it('the configuration table has each declared variable once, and every declared default is a valid value of its own setting', () => {
    const rows = configRows();
    const documented = rows.flatMap((d) => d.vars);
    assert.deepEqual(documented, Object.keys(SETTINGS), 'one row per variable, or rows sharing a meaning');
    for (const [name, s] of Object.entries(SETTINGS) as Array<[string, Setting<unknown>]>) {
      assert.doesNotThrow(() => s.parse(s.default), `${name}: its default ${JSON.stringify(s.default)} is not a valid value`);
      assert.ok(s.meaning.trim().length > 0, `${name}: says what it means`);
      // A default shown otherwise than as written is one the process computes or leaves empty.
      if (s.shown !== undefined) assert.ok(s.default === '' || s.shown === `\`${s.default}\``, `${name}: shown as ${s.shown}, declared ${JSON.stringify(s.default)}`);
    }
    // Read from the environment as declared: an empty variable is the default.
    assert.deepEqual(readSettings(SETTINGS, { SICKBAY_PORT: '' }).SICKBAY_PORT, 8443);
  });

  it('the fault table of docs/fault-suite.md has one held row per scenario, in order, and every scenario the tests run is listed (issue 31)', () => {
    const doc = read('docs/fault-suite.md');
    const table = doc.slice(doc.indexOf(FAULT_TABLE_START), doc.indexOf(FAULT_TABLE_END));
    assert.ok(table.length > 0, 'the table markers');
    assert.deepEqual(faultTableProblems(table), []);
    // Every scenario('...') of the tests is in chaos-scenarios.json, and every entry is run by one.
    const code = [...sources('tests/chaos'), ...sources('tests/integration')].map(read).join('\n');
    const run = [...code.matchAll(/scenario\(\s*(['"])((?:\\.|(?!\1).)*)\1/g)].map((m) => m[2]!.replace(/\\(.)/g, '$1'));
    assert.deepEqual(run.filter((s) => !faultScenarios().includes(s)), [], 'run but not in chaos-scenarios.json');
    assert.deepEqual(faultScenarios().filter((s) => !run.includes(s)), [], 'in chaos-scenarios.json but run by no test');
  });
});
