// The README's configuration table stays true: it is the one generated from
// src/core/config-docs.ts, which documents every variable sickbay reads exactly once,
// names none it does not read, and states each default as the schema has it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/core/config.js';
import { CONFIG_DOCS, configTable } from '../../src/core/config-docs.js';

describe('README configuration table', () => {
  it('is the table generated from src/core/config-docs.ts (npm run docs:config)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'));
    assert.ok(section.includes(`\n${configTable()}\n`), 'the README table differs from config-docs.ts: run npm run docs:config');
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
});
