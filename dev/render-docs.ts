// `npm run docs`: writes the generated reference pages of docs/reference/.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { referenceDocs } from './reference-docs.js';

const docs = fileURLToPath(new URL('../docs/', import.meta.url));
for (const [file, text] of Object.entries(referenceDocs())) {
  mkdirSync(path.dirname(path.join(docs, file)), { recursive: true });
  writeFileSync(path.join(docs, file), text);
  console.log(`docs/${file} written`);
}
