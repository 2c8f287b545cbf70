import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { termStep } from '../../src/kube/lease-elector.js';

// What one acquire-or-renew attempt means for a replica's term. The loop's call is aborted
// when it would outlive the renew deadline, so a hung renew ends exactly at the deadline
// (or, by the clock's rounding, a millisecond before it): that is the clock ending the
// term, never "another replica holds the lease".
describe('termStep', () => {
  const leader = { leading: true, ok: false, lost: false, outOfTime: false, sinceRenewMs: 3_000, renewDeadlineMs: 10_000 };

  it('a renew that got no answer until the deadline ends the term at the deadline, whoever was last seen holding', () => {
    assert.equal(termStep({ ...leader, outOfTime: true, sinceRenewMs: 10_000 }), 'deadline');
    assert.equal(termStep({ ...leader, outOfTime: true, sinceRenewMs: 9_999 }), 'deadline');
  });
  it('a leader past the deadline has lost the term to the clock, even if an answer came', () => {
    assert.equal(termStep({ ...leader, sinceRenewMs: 10_000 }), 'deadline');
    assert.equal(termStep({ ...leader, lost: true, sinceRenewMs: 12_000 }), 'deadline');
  });
  it('an answer within the deadline showing the lease is another replica\'s ends the term as lost', () => {
    assert.equal(termStep({ ...leader, lost: true }), 'lost');
  });
  it('a failed call within the deadline is retried, the term goes on', () => {
    assert.equal(termStep(leader), 'retry');
    assert.equal(termStep({ ...leader, sinceRenewMs: 9_999 }), 'retry');
  });
  it('a renew or an acquisition that succeeded renews', () => {
    assert.equal(termStep({ ...leader, ok: true, sinceRenewMs: 9_999 }), 'renewed');
    assert.equal(termStep({ ...leader, leading: false, ok: true }), 'renewed');
  });
  it('a candidate that failed only retries', () => {
    assert.equal(termStep({ ...leader, leading: false, lost: true }), 'retry');
    assert.equal(termStep({ ...leader, leading: false, outOfTime: true }), 'retry');
  });
});
