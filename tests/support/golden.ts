// One runner for golden-file tests: tests/golden/<suite>/<case>.pod.json is the input,
// <case>.golden.json the expected output. Cases are found automatically; a golden file
// without its input fails the run; SICKBAY_UPDATE_GOLDEN=1 rewrites the golden files.
// Every case also checks that the input is not changed and that applying the
// transformation to its own output (as the caller prepares it) changes nothing.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';

export interface GoldenSuite<Out> {
  /** The folder under tests/golden/. */
  suite: string;
  title: string;
  /** At least this many cases must be found (a moved folder is not an empty pass). */
  minCases: number;
  run(input: V1Pod): Out;
  /** f(f(x)) = f(x): runs the transformation again on `out` and asserts it is a fixed point. */
  again(out: Out, input: V1Pod): void;
}

export const goldenDir = (suite: string) => fileURLToPath(new URL(`../golden/${suite}/`, import.meta.url));

export function readGoldenInput(suite: string, name: string): V1Pod {
  return JSON.parse(readFileSync(path.join(goldenDir(suite), `${name}.pod.json`), 'utf8')) as V1Pod;
}

export function goldenFiles<Out>(s: GoldenSuite<Out>) {
  const dir = goldenDir(s.suite);
  const files = readdirSync(dir);
  const cases = files.filter((f) => f.endsWith('.pod.json')).map((f) => f.slice(0, -'.pod.json'.length));
  describe(s.title, () => {
    it('every golden file has its input (no stale golden files), and the cases are found', () => {
      const stale = files.filter((f) => f.endsWith('.golden.json') && !cases.includes(f.slice(0, -'.golden.json'.length)));
      assert.deepEqual(stale, [], `stale golden files: ${stale.join(', ')}`);
      assert.ok(cases.length >= s.minCases, `${cases.length} cases found in ${dir}`);
    });
    for (const name of cases) {
      it(name, () => {
        const input = readGoldenInput(s.suite, name);
        const before = structuredClone(input);
        const out = s.run(input);
        assert.deepEqual(input, before, 'the input is not changed');
        const golden = path.join(dir, `${name}.golden.json`);
        if (process.env.SICKBAY_UPDATE_GOLDEN === '1') writeFileSync(golden, `${JSON.stringify(out, null, 2)}\n`);
        assert.ok(existsSync(golden), `missing ${golden}; run with SICKBAY_UPDATE_GOLDEN=1 to create it`);
        assert.deepEqual(out, JSON.parse(readFileSync(golden, 'utf8')));
        s.again(out, input);
      });
    }
  });
}
