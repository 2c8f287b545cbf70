// The docs stay true: the reference pages are the ones generated from the code (npm run
// docs), the configuration reference documents every variable sickbay reads exactly once
// with the schema's defaults, every Event reason listed is one the code writes, the README
// stays short, and every link between the pages leads somewhere.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configSchema } from '../../src/core/config.js';
import { CONFIG_DOCS } from '../../src/core/config-docs.js';
import { PUBLIC_NAMES } from '../../src/core/contract.js';
import { EVENT_REASONS } from '../../src/core/event-reasons.js';
import * as names from '../../src/core/names.js';
import { FAULT_TABLE_END, FAULT_TABLE_START, faultScenarios, faultTableProblems } from '../../src/dev/fault-table.js';
import { referenceDocs } from '../../src/dev/reference-docs.js';

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
    const code = sources('src').filter((f) => !f.endsWith('event-reasons.ts') && !f.startsWith('src/dev/')).map(read).join('\n');
    for (const reason of Object.keys(EVENT_REASONS)) assert.ok(code.includes(`'${reason}'`), `${reason} is listed but nothing writes it`);
    const listed = new Set(PUBLIC_NAMES.map((n) => n.key));
    for (const [k, v] of Object.entries(names)) {
      if (!/^(ANN|LABEL|NODE_TAINT)_/.test(k) || typeof v !== 'string') continue;
      assert.ok(listed.has(v), `${k} (${v}) is not in src/core/contract.ts`);
    }
  });

  it('documents exactly the variables src/core/config.ts reads, each once', () => {
    const documented = CONFIG_DOCS.flatMap((d) => d.vars);
    const read = Object.keys(configSchema.shape);
    assert.deepEqual(read.filter((k) => !documented.includes(k)), [], 'read but not documented');
    assert.deepEqual(documented.filter((k) => !read.includes(k)), [], 'documented but not read');
    assert.deepEqual(documented.filter((k, i) => documented.indexOf(k) !== i), [], 'documented twice');
  });

  it('states each default as the schema has it', () => {
    const shape = configSchema.shape as Record<string, { parse(v: unknown): unknown }>;
    let compared = 0;
    for (const d of CONFIG_DOCS) {
      // "(none)", "(empty: ...)" or a default computed at start (the host name): the schema's is empty.
      if (d.default.startsWith('(') || !d.default.includes('`')) {
        for (const v of d.vars) {
          const value = shape[v]!.parse(undefined);
          assert.ok(value === '' || (Array.isArray(value) && value.length === 0), `${v}: documented as ${d.default}, the schema's default is ${JSON.stringify(value)}`);
        }
        continue;
      }
      const written = [...d.default.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);
      assert.equal(written.length, d.vars.length, `${d.vars.join(', ')}: one default each, in backticks (${d.default})`);
      d.vars.forEach((v, i) => {
        assert.deepEqual(shape[v]!.parse(written[i]), shape[v]!.parse(undefined), `${v}: the documented default ${written[i]} is not the schema's`);
        compared++;
      });
    }
    assert.ok(compared > 40, `${compared} defaults compared`);
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
