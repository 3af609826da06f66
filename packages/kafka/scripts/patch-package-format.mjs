// prepack: writes patches/kafkajs+2.2.4.patch, the kafkajs patch in patch-package's format
// (paths under node_modules/kafkajs/), beside the pnpm-format patches/kafkajs@2.2.4.patch it is
// made from, so npm users apply it with patch-package (docs/operators.md, the kafkajs patch).
// Generated at pack time only (gitignored), so the two never drift.
import { readFileSync, writeFileSync } from 'node:fs';

const dir = new URL('../patches/', import.meta.url);
const pnpmFormat = readFileSync(new URL('kafkajs@2.2.4.patch', dir), 'utf8');
const patchPackageFormat = pnpmFormat
  .replace(/^diff --git a\/(\S+) b\/(\S+)$/gm, 'diff --git a/node_modules/kafkajs/$1 b/node_modules/kafkajs/$2')
  .replace(/^--- a\//gm, '--- a/node_modules/kafkajs/')
  .replace(/^\+\+\+ b\//gm, '+++ b/node_modules/kafkajs/');
if (patchPackageFormat === pnpmFormat) throw new Error('kafkajs@2.2.4.patch: no file headers found to rewrite');
writeFileSync(new URL('kafkajs+2.2.4.patch', dir), patchPackageFormat);
