import { afterAll, describe, expect, it } from 'vitest';
import { testServices } from '@eventbus/dev-services/test';
import { formatResults, runScenario, scenarios, type MatrixEnvironment, type ScenarioResult } from '../src/index.js';

// The short form of the fault matrix (`pnpm test:faults --short`) for the scenarios that need
// no private broker: relays and consumers run as processes from dist/ (`pnpm test` builds
// first). Scenario 3 (a stopped broker) and the full matrix run with `pnpm test:faults`.
const env: MatrixEnvironment = {
  databaseUrl: testServices().databaseUrl,
  kafkaBrokers: testServices().kafkaBrokers,
  privateBrokerPort: 19692,
  log: (line) => console.error(line),
};
const short = scenarios({ short: true });
const results: ScenarioResult[] = [];

afterAll(() => {
  if (results.length > 0) console.error(`\n${formatResults(results)}`);
});

describe('fault matrix, short form: lost = phantom = inversions = 0, republished duplicates within one batch per fault', () => {
  for (const id of [2, 6, 7, 8]) {
    const def = short.find((s) => s.id === id)!;
    it(`scenario ${id}: ${def.name}`, { timeout: 90_000 }, async () => {
      const result = await runScenario(def, env, 45_000);
      results.push(result);
      expect(result.error).toBeUndefined();
      // The workload really ran: events committed and rolled back, and (per scenario) faults happened.
      expect(result.committed).toBeGreaterThan(100);
      expect(result.rolledBack).toBeGreaterThan(0);
      expect(result.lost).toEqual([]);
      expect(result.phantom).toEqual([]);
      expect(result.atomicity).toEqual([]);
      expect(result.inversions).toEqual([]);
      expect(result.effectsNotOnce).toEqual([]);
      expect(result.duplicates.republished).toBeLessThanOrEqual(result.duplicates.bound);
      expect(result.violations).toEqual([]);
      if (id === 2) expect(result.faultKinds['relay SIGKILL']).toBeGreaterThan(0);
      if (id === 6) {
        expect(result.faultKinds['consumer SIGKILL']).toBeGreaterThan(0);
        expect(result.faultKinds['consumer rolling restart']).toBe(def.workers);
      }
      if (id === 7) {
        expect(result.poisonCommitted).toBeGreaterThan(0);
        expect(result.deadLettered).toBe(result.poisonCommitted);
        expect(result.delivered).toBe(result.committed - result.poisonCommitted);
        // Other tenants are not held up by the poison: compared with a control group reading the
        // same events at the same time without failing on them (a loose bound: 2 shared cores).
        const control = result.controlCleanTenantLatencyMs!;
        expect(result.cleanTenantLatencyMs.p99).toBeLessThanOrEqual(3 * control.p99 + 1000);
      }
      if (id === 8) expect(result.faultKinds['long transaction']).toBe(1);
    });
  }
});
