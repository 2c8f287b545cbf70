// `npm run webhook-config`: rewrites webhook-config/ from the generator.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { committedWebhookManifests } from '../webhook/webhook-manifests.js';

for (const [file, text] of Object.entries(committedWebhookManifests())) {
  const out = path.join('webhook-config', file);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, text);
  console.log(`wrote ${out}`);
}
