import { eventTypePatternProblem, invalidConfig } from '@eventbus/core';

/**
 * Translates a subscription pattern (`product.*`, `product.#`, see core's event-type.ts)
 * into an anchored POSIX regular expression, so the EventLog query filters types in
 * Postgres (`event_type ~ ANY($n)`, a bound parameter) instead of shipping every row of
 * the window to Node. The pattern is validated first: segments hold only [a-z0-9_-], so
 * nothing in it has a meaning in a regex besides what this function writes.
 * Equivalent to `matchesEventType` (tested against it).
 */
export function patternToRegex(pattern: string): string {
  const problem = eventTypePatternProblem(pattern);
  if (problem) throw invalidConfig('eventTypes', `valid event type patterns (${JSON.stringify(pattern)} ${problem})`, pattern);
  const segment = (s: string) => (s === '*' ? '[^.]+' : s);
  const segments = pattern.split('.');
  const hash = segments.indexOf('#');
  if (hash === -1) return `^${segments.map(segment).join('\\.')}$`;
  const head = segments.slice(0, hash).map(segment).join('\\.');
  const tail = segments
    .slice(hash + 1)
    .map(segment)
    .join('\\.');
  // `#` is zero or more whole segments.
  if (head === '' && tail === '') return '^[^.]+(\\.[^.]+)*$';
  if (tail === '') return `^${head}(\\.[^.]+)*$`;
  if (head === '') return `^([^.]+\\.)*${tail}$`;
  return `^${head}(\\.[^.]+)*\\.${tail}$`;
}
