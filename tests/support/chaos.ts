// The fault suite's rows. A scenario is a test that records what it did (load, fault,
// outcome, figures) as a diagnostic; tests/support/chaos-reporter.mjs collects them into
// the table `npm run chaos` (and `npm test`) prints. A row says "held" only when its test
// passed: the figures of a failed scenario are printed beside the failure.
import { readFileSync } from 'node:fs';
import { it, type TestContext } from 'node:test';

/** Marks a row among a test's diagnostics (chaos-reporter.mjs reads the same tag). */
export const CHAOS_TAG = 'sickbay-chaos ';

/** The scenarios of the fault table, in its order (the reporter names any that did not run). */
export const SCENARIOS: readonly string[] = JSON.parse(readFileSync(new URL('./chaos-scenarios.json', import.meta.url), 'utf8'));

export interface ChaosRow {
  scenario: string;
  load: string;
  fault: string;
  outcome: string;
  figures: string[];
  held: boolean;
  error?: string;
}

export interface Figures {
  /** One figure of the row, e.g. fig('takeover', '15.2 s'). */
  (name: string, value: string | number): void;
}

/**
 * A test that is also a row of the fault table. `fn` records figures as it goes and
 * asserts the outcome; the row is emitted whether it passes or not.
 */
export function scenario(
  scenario: string,
  what: { load: string; fault: string; outcome: string; title?: string },
  fn: (fig: Figures, t: TestContext) => Promise<void>,
  opts: { timeout?: number } = {},
) {
  if (!SCENARIOS.includes(scenario)) throw new Error(`unknown fault scenario "${scenario}": add it to tests/support/chaos-scenarios.json`);
  it(`${what.title ?? scenario} [chaos]`, opts, async (t) => {
    const figures: string[] = [];
    const fig: Figures = (name, value) => figures.push(`${name} ${value}`);
    const row = (held: boolean, error?: string): ChaosRow => ({ scenario, load: what.load, fault: what.fault, outcome: what.outcome, figures, held, error });
    try {
      await fn(fig, t);
    } catch (err) {
      t.diagnostic(CHAOS_TAG + JSON.stringify(row(false, (err as Error)?.message?.split('\n')[0] ?? String(err))));
      throw err;
    }
    t.diagnostic(CHAOS_TAG + JSON.stringify(row(true)));
  });
}

/** Milliseconds as seconds, one decimal. */
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}
