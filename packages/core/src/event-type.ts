/**
 * Event type naming and matching.
 *
 * Names are lowercase dot-separated segments:
 *   `{resource}.{action}` (product.created), `{service}.{resource}.{action}`
 *   (shopify.product.synced), `{domain}.{event}` (pricechange.applied).
 * A segment starts with a letter and holds letters, digits, `_` or `-`; 2 to 8 segments.
 *
 * Patterns used by subscriptions:
 *   `product.created`  exactly that type
 *   `product.*`        `*` matches exactly one segment (product.created, not product.variant.created)
 *   `*.created`        any one first segment
 *   `product.#`        `#` matches zero or more segments, any depth (product, product.created,
 *                      product.variant.created); `#` may appear once, as a whole segment
 *   `#`                every event
 */

const SEGMENT = /^[a-z][a-z0-9_-]*$/;
export const MAX_EVENT_TYPE_LENGTH = 200;
const MIN_SEGMENTS = 2;
const MAX_SEGMENTS = 8;

/** Returns why `eventType` breaks the convention, or undefined when it is valid. */
export function eventTypeProblem(eventType: string): string | undefined {
  if (eventType.length > MAX_EVENT_TYPE_LENGTH) return `is longer than ${MAX_EVENT_TYPE_LENGTH} characters`;
  const segments = eventType.split('.');
  if (segments.length < MIN_SEGMENTS) {
    return `needs at least ${MIN_SEGMENTS} dot-separated segments, like "product.created"`;
  }
  if (segments.length > MAX_SEGMENTS) return `has more than ${MAX_SEGMENTS} segments`;
  const bad = segments.find((s) => !SEGMENT.test(s));
  if (bad !== undefined) {
    return `has the segment ${JSON.stringify(bad)}; segments are lowercase, start with a letter and hold only a-z, 0-9, "_" or "-"`;
  }
  return undefined;
}

/** Returns why `pattern` is not a valid subscription pattern, or undefined. */
export function eventTypePatternProblem(pattern: string): string | undefined {
  if (pattern.length === 0 || pattern.length > MAX_EVENT_TYPE_LENGTH) return 'must be 1 to 200 characters';
  const segments = pattern.split('.');
  if (segments.filter((s) => s === '#').length > 1) return 'may contain "#" only once';
  const bad = segments.find((s) => s !== '*' && s !== '#' && !SEGMENT.test(s));
  if (bad !== undefined) return `has the segment ${JSON.stringify(bad)}; use lowercase names, "*" or "#"`;
  return undefined;
}

/** True when `eventType` matches `pattern` (see the rules above). */
export function matchesEventType(pattern: string, eventType: string): boolean {
  const p = pattern.split('.');
  const t = eventType.split('.');
  const hash = p.indexOf('#');
  if (hash === -1) return p.length === t.length && p.every((seg, i) => seg === '*' || seg === t[i]);
  const head = p.slice(0, hash);
  const tail = p.slice(hash + 1);
  if (t.length < head.length + tail.length) return false;
  const segmentMatches = (seg: string, i: number) => seg === '*' || seg === t[i];
  return head.every(segmentMatches) && tail.every((seg, i) => segmentMatches(seg, t.length - tail.length + i));
}

/** Compiles patterns once for the hot path of a consumer. */
export function eventTypeMatcher(patterns: readonly string[]): (eventType: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.includes('*') && !p.includes('#')));
  const wild = patterns.filter((p) => !exact.has(p));
  if (wild.length === 0) return (eventType) => exact.has(eventType);
  // A consumer asks once per message; the types it meets are few, so their answers are kept
  // (up to MATCH_CACHE_SIZE types, then the cache starts over: a stream of ever new types costs
  // no more than without it).
  const answers = new Map<string, boolean>();
  return (eventType) => {
    let answer = answers.get(eventType);
    if (answer === undefined) {
      answer = exact.has(eventType) || wild.some((p) => matchesEventType(p, eventType));
      if (answers.size >= MATCH_CACHE_SIZE) answers.clear();
      answers.set(eventType, answer);
    }
    return answer;
  };
}

const MATCH_CACHE_SIZE = 1000;
