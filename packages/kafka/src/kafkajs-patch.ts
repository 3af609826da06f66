import { createRequire } from 'node:module';

/**
 * Which revision of `patches/kafkajs@2.2.4.patch` the kafkajs in use carries, or
 * `undefined` for a plain kafkajs. The patch adds `kafkajs/src/eventbus-patch.js` as its
 * marker. pnpm applies the patch inside this repository (and in its Docker images); a
 * project that installs `@eventbus/relay` from a registry gets plain kafkajs unless it
 * applies the patch itself, and its relay then drains several times slower (see docs/performance.md's
 * Benchmarks). The relay logs a warning at start in that case rather than failing: plain
 * kafkajs puts the same bytes on the wire.
 */
/**
 * The revision this code is written for: per-partition send tracking (3), send deadlines (4),
 * message refusals ending a send and the acknowledged partitions of a failed send (5), the
 * consumer's `settleBatches` before a rejoin or leave (6), no idle request-queue timer (7), rejoins
 * after a fetch error through the runner and commits until the member leaves, never under a later
 * generation (8).
 */
export const KAFKAJS_PATCH_REVISION = 8;

export function kafkajsPatchRevision(load: (id: string) => unknown = createRequire(import.meta.url)): number | undefined {
  try {
    const marker = load('kafkajs/src/eventbus-patch.js') as { revision?: unknown };
    return typeof marker.revision === 'number' ? marker.revision : undefined;
  } catch {
    return undefined;
  }
}
