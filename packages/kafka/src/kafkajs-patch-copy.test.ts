import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The published @eventbus/kafka ships the patch (`files`: patches/) so a service can apply it to
// its own kafkajs; the workspace installs kafkajs with the root patches/ copy. The two must not drift.
describe('the kafkajs patch shipped in @eventbus/kafka', () => {
  it('is byte for byte the patch the workspace installs', () => {
    const shipped = readFileSync(fileURLToPath(new URL('../patches/kafkajs@2.2.4.patch', import.meta.url)));
    const workspace = readFileSync(fileURLToPath(new URL('../../../patches/kafkajs@2.2.4.patch', import.meta.url)));
    expect(shipped.length).toBeGreaterThan(0);
    expect(shipped.equals(workspace)).toBe(true);
  });
});
