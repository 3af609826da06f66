import { EventBusError, shellQuote } from '@eventbus/core';
import type { ResolvedSubscription } from './options.js';

/** How many of the consumer's subscriptions the error lists (its message goes into a DLQ header of at most 2 KiB). */
const LISTED_SUBSCRIPTIONS = 20;

/**
 * The dead letter's error (class `EventBusError:UNKNOWN_SUBSCRIPTION`) for a retry whose
 * subscription no longer handles its event: no subscription has that name, or the one that has
 * it no longer matches the type (a positional name, `"0"`, now another subscription's after a
 * subscribe() was added ahead of it). Committed without a handler call, the event would be lost
 * in silence; a re-drive of a dead letter too, its row marked redriven. The dead letter names no
 * subscription, so its re-drive runs every subscription of the group that handles the type then.
 * No stack: it would be the consumer's own.
 */
export function unknownSubscriptionError(input: {
  groupId: string;
  eventType: string;
  /** The subscription the retry names. */
  name: string;
  subscriptions: readonly ResolvedSubscription[];
}): EventBusError {
  const { groupId, eventType, name, subscriptions } = input;
  const listed = subscriptions
    .slice(0, LISTED_SUBSCRIPTIONS)
    .map((s) => `${JSON.stringify(s.name)} (${s.eventTypes.join(', ')})`)
    .join(', ');
  const more = subscriptions.length > LISTED_SUBSCRIPTIONS ? ` and ${subscriptions.length - LISTED_SUBSCRIPTIONS} more` : '';
  const handling = subscriptions.filter((s) => s.matches(eventType)).map((s) => JSON.stringify(s.name));
  const redrive =
    handling.length > 0
      ? `Re-driving this dead letter runs every subscription of the group that then handles ${eventType} (now ${handling.join(', ')}): ` +
        `eventbus dlq retry <id> (eventbus dlq list --group ${shellQuote(groupId)} --type ${shellQuote(eventType)} shows it).`
      : `No subscription of this consumer handles ${eventType} now: deploy one that does and re-drive (eventbus dlq retry <id>), or discard it (eventbus dlq discard <id>); ` +
        `eventbus dlq list --group ${shellQuote(groupId)} --type ${shellQuote(eventType)} shows it.`;
  const error = new EventBusError(
    'UNKNOWN_SUBSCRIPTION',
    `a retry of ${eventType} for subscription ${JSON.stringify(name)} of group ${groupId} was not handled: no subscription of this consumer by that name handles ${eventType}; ` +
      `its subscriptions are ${listed}${more}. A subscription's name is part of its retries' and dead letters' identity, and one subscribed without a name is named by its position: ` +
      `adding, removing or reordering subscribe() calls renames it. Name every subscription (subscribe({ name })). ${redrive}`,
    { retriable: false, details: { subscription: name, eventType, subscriptions: subscriptions.map((s) => s.name) } },
  );
  error.stack = undefined;
  return error;
}
