import { invalidConfig } from './errors.js';
import { eventTypePatternProblem, eventTypeProblem, matchesEventType } from './event-type.js';

/**
 * Which Kafka topic an event type goes to. The relay uses `topicFor` when it publishes; a
 * consumer uses `topicsFor` to find what to subscribe to, so both sides share one routing.
 *
 * Default: one topic per event family, the first segment of the type, after a prefix:
 * `product.created` → `eventbus.product`. A family's events share one topic, so a
 * tenant's `product.created` and `product.updated` stay in order on one partition.
 */
export interface TopicRoutingOptions {
  /** Prepended to the family name. Default `eventbus.`. */
  prefix?: string;
  /** Pattern → topic, first match wins (insertion order); see `matchesEventType`. */
  routes?: Record<string, string>;
}

export const DEFAULT_TOPIC_PREFIX = 'eventbus.';
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

export interface TopicSubscription {
  /** Topics named exactly. */
  topics: string[];
  /** Set when a pattern's family is a wildcard: every topic under the prefix. */
  topicPattern?: RegExp;
}

export class TopicRouter {
  readonly prefix: string;
  private readonly routes: Array<[pattern: string, topic: string]>;
  private readonly cache = new Map<string, string>();

  constructor(options: TopicRoutingOptions = {}) {
    this.prefix = options.prefix ?? DEFAULT_TOPIC_PREFIX;
    if (this.prefix !== '' && !TOPIC_NAME.test(this.prefix)) {
      throw invalidConfig('routing.prefix', 'letters, digits, ".", "_" or "-"', this.prefix);
    }
    this.routes = Object.entries(options.routes ?? {});
    for (const [pattern, topic] of this.routes) {
      const problem = eventTypePatternProblem(pattern);
      if (problem) throw invalidConfig(`routing.routes[${JSON.stringify(pattern)}]`, `a valid pattern (${problem})`, pattern);
      if (!TOPIC_NAME.test(topic)) throw invalidConfig(`routing.routes[${JSON.stringify(pattern)}]`, 'a valid Kafka topic name', topic);
    }
  }

  /** The topic an event of this type is published to. */
  topicFor(eventType: string): string {
    let topic = this.cache.get(eventType);
    if (topic === undefined) {
      topic = this.routes.find(([pattern]) => matchesEventType(pattern, eventType))?.[1] ?? this.familyTopic(eventType);
      if (this.cache.size < 10_000) this.cache.set(eventType, topic);
    }
    return topic;
  }

  /**
   * The topics that may carry events matching `patterns`. Conservative: it may include a
   * topic that also carries other types (the consumer filters by type), never miss one.
   */
  topicsFor(patterns: readonly string[]): TopicSubscription {
    const topics = new Set<string>();
    let wildcardFamily = false;
    for (const pattern of patterns) {
      const problem = eventTypePatternProblem(pattern);
      if (problem) throw invalidConfig('eventTypes', `valid patterns (${JSON.stringify(pattern)} ${problem})`, pattern);
      for (const [route, topic] of this.routes) if (patternsMayOverlap(route, pattern)) topics.add(topic);
      const family = pattern.split('.')[0]!;
      if (family === '*' || family === '#') wildcardFamily = true;
      else topics.add(this.prefix + family);
    }
    const result: TopicSubscription = { topics: [...topics].sort() };
    if (wildcardFamily) result.topicPattern = new RegExp(`^${escapeRegExp(this.prefix)}[a-z][a-z0-9_-]*$`);
    return result;
  }

  private familyTopic(eventType: string): string {
    if (eventTypeProblem(eventType)) throw invalidConfig('eventType', 'a valid event type', eventType);
    return this.prefix + eventType.split('.')[0]!;
  }
}

/** Could some event type match both patterns? Exact for patterns without `#`, conservative with it. */
export function patternsMayOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  const compatible = (p: string | undefined, q: string | undefined) => p === '*' || q === '*' || p === q;
  if (!x.includes('#') && !y.includes('#')) return x.length === y.length && x.every((s, i) => compatible(s, y[i]));
  // With "#": compare the literal heads before any "#" only.
  const headX = x.slice(0, x.indexOf('#') === -1 ? x.length : x.indexOf('#'));
  const headY = y.slice(0, y.indexOf('#') === -1 ? y.length : y.indexOf('#'));
  const n = Math.min(headX.length, headY.length);
  for (let i = 0; i < n; i++) if (!compatible(headX[i], headY[i])) return false;
  return true;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
