// What a person reads of an API error: one line, never client-node's dump of body and
// headers (stopping the real-node playground printed "HTTP-Code: 504 Message: Unknown
// API Status Code! Body: ... Headers: ..." over several lines).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { errorDetail, errorText } from '../../src/kube/api.js';

describe('errorText', () => {
  it('an API Status: its code and message', () => {
    const status = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'pods "web-1" not found', reason: 'NotFound', code: 404 });
    assert.equal(errorText(new ApiException(404, 'Not Found', status, { 'content-type': 'application/json' })), '404 pods "web-1" not found');
  });

  it('an answer that is not a Status (a proxy\'s 504 page): the code, its reason and the first words, on one line', () => {
    const err = new ApiException(504, 'Unknown API Status Code!', '<html>\n<body>\n<h1>504 Gateway Time-out</h1>\nThe server didn\'t respond in time.\n</body>\n</html>', { server: 'nginx', 'content-type': 'text/html' });
    assert.match(err.message, /\n/, 'client-node dumps several lines');
    const text = errorText(err);
    assert.equal(text, "504 Gateway Timeout: 504 Gateway Time-out The server didn't respond in time.");
    assert.doesNotMatch(text, /HTTP-Code|Headers|nginx/);
  });

  it('no body at all: the code and its reason', () => {
    assert.equal(errorText(new ApiException(503, 'Unknown API Status Code!', '', {})), '503 Service Unavailable');
  });

  it('no answer: the error and its cause (ECONNREFUSED)', () => {
    const err = Object.assign(new Error('request to https://127.0.0.1:6443/api failed'), { cause: { code: 'ECONNREFUSED' } });
    assert.equal(errorText(err), 'request to https://127.0.0.1:6443/api failed (ECONNREFUSED)');
  });

  it('a long or multi-line message is one line of at most 300 characters', () => {
    const text = errorText(new Error(`first line\nsecond line ${'x'.repeat(500)}`));
    assert.equal(text, 'first line');
    assert.ok(errorText(new ApiException(500, 'x', 'y'.repeat(1000), {})).length <= 300);
  });

  it('errorDetail: an API error in one line, another error with its stack', () => {
    assert.equal(errorDetail(new ApiException(503, 'Unknown API Status Code!', '', {})), '503 Service Unavailable');
    assert.match(errorDetail(new TypeError('x is undefined')), /^TypeError: x is undefined\n\s+at /);
  });
});
