// `npm run docs:config`: writes the README's configuration table from src/core/config-docs.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configTable } from '../core/config-docs.js';

const readmePath = fileURLToPath(new URL('../../README.md', import.meta.url));
const readme = readFileSync(readmePath, 'utf8');
const start = readme.indexOf('| variable | default | meaning |', readme.indexOf('## Configuration'));
if (start < 0) throw new Error('no configuration table in README.md');
let end = start;
while (end < readme.length && readme.startsWith('|', end)) end = readme.indexOf('\n', end) + 1 || readme.length;
writeFileSync(readmePath, `${readme.slice(0, start)}${configTable()}\n${readme.slice(end)}`);
console.log('README.md: configuration table written');
