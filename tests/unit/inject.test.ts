// `sickbay inject`: manifests through the webhook's own injection, offline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAllYaml } from '@kubernetes/client-node';
import { injectManifest, renderManifest } from '../../src/cli/inject.js';

const settings = { shimImage: 'registry.example/sickbay-shim:test', shimSource: '/opt/sickbay/shim', pullSecrets: ['shim-pull'] };
const plain = <T>(v: T): any => JSON.parse(JSON.stringify(v));

const deployment = `
# from a chart
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - { name: app, image: nginx }
        - { name: worker, image: w, command: [/worker] }
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec: { ports: [{ port: 80 }] }
---
`;

describe('sickbay inject', () => {
  it('changes pod templates as the webhook does, leaves other objects as they are, and says why a container is left alone', () => {
    const { documents, notes } = injectManifest(deployment, settings);
    assert.equal(documents.length, 2, 'empty documents dropped');
    const d = plain(documents[0]);
    const spec = d.spec.template.spec;
    assert.equal(d.spec.template.metadata.annotations['sickbay.io/injected'], 'true');
    assert.equal(spec.initContainers[0].image, 'registry.example/sickbay-shim:test');
    assert.deepEqual(spec.imagePullSecrets, [{ name: 'shim-pull' }]);
    assert.deepEqual(spec.containers[1].command, ['/sickbay/bin/supervise', '--name', 'worker', '--', '/worker']);
    assert.equal(spec.containers[0].command, undefined, 'no command: not wrapped');
    assert.deepEqual(plain(documents[1]), { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ port: 80 }] } });
    assert.deepEqual(notes.slice(0, 1), ['Deployment/web: injected; supervised: worker']);
    assert.match(notes[1]!, /^Deployment\/web: container "app" has no command.*sickbay\.io\/entrypoint\.app/);
  });

  it('what it prints reads back, and injecting it again changes nothing (as the webhook: no second patch)', () => {
    const once = renderManifest(injectManifest(deployment, settings).documents, 'yaml');
    const again = injectManifest(once, settings);
    assert.equal(renderManifest(again.documents, 'yaml'), once);
    assert.deepEqual(again.notes, ['Deployment/web: already injected (annotation sickbay.io/injected)']);
    const json = JSON.parse(renderManifest(injectManifest(deployment, settings).documents, 'json'));
    assert.equal(json.kind, 'List');
    assert.deepEqual(plain(loadAllYaml(once)).map((o: any) => o.kind), ['Deployment', 'Service']);
  });

  it('CronJobs, bare Pods, Lists, and a pod that opts out', () => {
    const text = JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly' }, spec: { schedule: '@daily', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'job', image: 'j', command: ['/job'] }] } } } } } },
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'debug', labels: { 'sickbay.io/inject': 'false' } }, spec: { containers: [{ name: 'sh', image: 'busybox', command: ['sh'] }] } },
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'one' }, spec: { containers: [{ name: 'c', image: 'x', command: ['/x'] }] } },
      ],
    });
    const { documents, notes } = injectManifest(text, settings);
    const items = plain(documents[0]).items;
    assert.equal(items[0].spec.jobTemplate.spec.template.spec.containers[0].command[0], '/sickbay/bin/supervise');
    assert.equal(items[1].spec.initContainers, undefined);
    assert.equal(items[2].spec.initContainers[0].name, 'sickbay-shim-install');
    assert.deepEqual(notes, ['CronJob/nightly: injected; supervised: job', 'Pod/debug: left alone: labelled sickbay.io/inject=false', 'Pod/one: injected; supervised: c']);
  });

  it('bad input is an error naming the document, never a stack trace', () => {
    assert.throws(() => injectManifest('kind: [', settings), /^Error: not YAML or JSON \(line 2\)/);
    assert.throws(() => injectManifest('- a\n- b\n', settings), /document 1: not a Kubernetes object/);
    assert.throws(() => injectManifest('apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: 3}\n', settings), /document 2 \(Pod\/p\): not a valid pod: spec\.containers must be a list/);
  });
});
