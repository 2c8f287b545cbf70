// `npm run webhook-config`: rewrites webhook-config/ and chart/crds/ from their generators.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { committedChartCrds } from './chart-crds.js';
import { committedChartFiles } from '../src/core/shim-commands.js';
import { committedWebhookManifests } from '../src/webhook/webhook-manifests.js';

for (const [file, text] of Object.entries(committedWebhookManifests())) {
  const out = path.join('webhook-config', file);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, text);
  console.log(`wrote ${out}`);
}

for (const [file, text] of Object.entries(committedChartCrds())) {
  const out = path.join('chart', 'crds', file);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, text);
  console.log(`wrote ${out}`);
}

for (const [file, text] of Object.entries(committedChartFiles())) {
  const out = path.join('chart', 'files', file);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, text);
  console.log(`wrote ${out}`);
}
