import { describe, expect, it } from 'vitest';
import { applicationName } from './relay-lane.js';

describe('applicationName (how a lane shows in pg_stat_activity)', () => {
  it('keeps short names whole', () => {
    expect(applicationName('relay-a/lane-1')).toBe('eventbus-relay relay-a/lane-1');
  });

  it('cuts a long instance id, never the lane suffix, to fit 63 bytes', () => {
    const name = applicationName(`${'x'.repeat(80)}/lane-12`);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(name.startsWith('eventbus-relay xxx')).toBe(true);
    expect(name.endsWith('/lane-12')).toBe(true);
    const multiByte = applicationName(`${'é'.repeat(40)}/lane-3`);
    expect(Buffer.byteLength(multiByte)).toBeLessThanOrEqual(63);
    expect(multiByte.endsWith('/lane-3')).toBe(true);
  });
});
