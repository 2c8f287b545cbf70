// The README's configuration table stays true: every variable sickbay reads is in it,
// and it names none that sickbay does not read.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/core/config.js';

describe('README configuration table', () => {
  it('lists exactly the variables src/core/config.ts reads', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'));
    const tableRows = section.split('\n').filter((l) => l.startsWith('| `SICKBAY_'));
    const documented = new Set(tableRows.flatMap((row) => [...row.split('|')[1]!.matchAll(/`(SICKBAY_[A-Z0-9_]+)`/g)].map((m) => m[1]!)));
    const read = Object.keys(configSchema.shape);
    assert.deepEqual(read.filter((k) => !documented.has(k)), [], 'read but not documented');
    assert.deepEqual([...documented].filter((k) => !read.includes(k)), [], 'documented but not read');
  });
});
