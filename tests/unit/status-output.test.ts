// What `sickbay status` prints: names and reasons written by others cannot rewrite the terminal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printable } from '../../src/cli/status.js';

describe('sickbay status output', () => {
  it('shows control characters and bidi overrides from the cluster as escapes, never raw', () => {
    assert.equal(printable('deadlock\x1b[2J\r\nsickbay: all fine\u202e'), 'deadlock\\u001b[2J\\u000d\\u000asickbay: all fine\\u202e');
    assert.equal(printable('überlastet — 50 %'), 'überlastet — 50 %');
  });
});
