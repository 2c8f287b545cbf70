import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSize } from '../../src/cli/collect.js';

describe('sickbay collect --max-size', () => {
  it('reads Kubernetes quantities and bytes, refuses the rest', () => {
    assert.equal(parseSize('1Gi'), 2 ** 30);
    assert.equal(parseSize('500Mi'), 500 * 2 ** 20);
    assert.equal(parseSize('64Ki'), 65536);
    assert.equal(parseSize('2G'), 2e9);
    assert.equal(parseSize('1048576'), 1048576);
    assert.throws(() => parseSize('lots'), /not a size: "lots"/);
    assert.throws(() => parseSize('-1Gi'), /not a size/);
  });
});
