import { describe, expect, it } from 'vitest';
import { KAFKAJS_PATCH_REVISION, kafkajsPatchRevision } from './kafkajs-patch.js';

describe('kafkajsPatchRevision', () => {
  it('reads the marker the patch adds to kafkajs (this repository installs the patched kafkajs)', () => {
    expect(kafkajsPatchRevision()).toBe(KAFKAJS_PATCH_REVISION);
  });

  it('says undefined for a plain kafkajs (no marker) or a marker without a revision', () => {
    const missing = () => {
      throw Object.assign(new Error("Cannot find module 'kafkajs/src/eventbus-patch.js'"), { code: 'MODULE_NOT_FOUND' });
    };
    expect(kafkajsPatchRevision(missing)).toBeUndefined();
    expect(kafkajsPatchRevision(() => ({}))).toBeUndefined();
    expect(kafkajsPatchRevision(() => ({ revision: 3 }))).toBe(3);
  });
});
