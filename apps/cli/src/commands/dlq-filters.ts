import { dateFlag, intFlag, listFlag } from '../args.js';
import { usageError } from '../cli-error.js';
import type { DeadLetterFilter } from '@eventbus/dead-letters';

/** The filter flags shared by `dlq list` and `dlq retry|discard --all`. */
export const DLQ_FILTER_FLAGS = {
  tenant: { type: 'string' },
  group: { type: 'string' },
  type: { type: 'string' },
  status: { type: 'string' },
  stage: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
} as const;

export const DLQ_FILTER_HELP = `Filters (each a bound parameter):
  --tenant <id>          one tenant
  --group <group>        one consumer group
  --type <patterns>      event types, comma-separated patterns (order.*, order.#)
  --stage relay|consumer
  --status <s>           pending (default), redriven, discarded or all
  --since <ISO>          dead-lettered at or after
  --until <ISO>          dead-lettered before
  --limit <n>            at most n rows (default 50 for list, 1000 for --all; max 10000)`;

export interface DlqFilterFlagValues {
  tenant?: string | undefined;
  group?: string | undefined;
  type?: string | undefined;
  status?: string | undefined;
  stage?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  limit?: string | undefined;
}

const STATUSES = ['pending', 'redriven', 'discarded', 'all'] as const;
const MAX_TEXT = 1000;

export async function dlqFilterFromFlags(values: DlqFilterFlagValues, defaultLimit: number): Promise<DeadLetterFilter> {
  const status = values.status ?? 'pending';
  if (!(STATUSES as readonly string[]).includes(status))
    throw usageError(`--status ${JSON.stringify(status.slice(0, 80))} is invalid: expected ${STATUSES.join(', ')}`);
  if (values.stage !== undefined && values.stage !== 'relay' && values.stage !== 'consumer') {
    throw usageError(`--stage ${JSON.stringify(values.stage.slice(0, 80))} is invalid: expected relay or consumer`);
  }
  for (const [name, value] of [
    ['tenant', values.tenant],
    ['group', values.group],
  ] as const) {
    if (value !== undefined && value.length > MAX_TEXT) throw usageError(`--${name} is longer than ${MAX_TEXT} characters`);
  }
  const types = listFlag(values.type);
  const { patternToRegex } = await import('@eventbus/replay');
  const since = dateFlag('since', values.since);
  const until = dateFlag('until', values.until);
  if (since && until && until <= since) throw usageError(`--until ${until.toISOString()} is not after --since ${since.toISOString()}`);
  return {
    status: status === 'all' ? null : (status as DeadLetterFilter['status']),
    limit: intFlag('limit', values.limit, 1, 10_000) ?? defaultLimit,
    ...(values.tenant !== undefined ? { tenantId: values.tenant } : {}),
    ...(values.group !== undefined ? { groupId: values.group } : {}),
    ...(types.length > 0 ? { typeRegexes: types.map(patternToRegex) } : {}),
    ...(values.stage !== undefined ? { stage: values.stage as 'relay' | 'consumer' } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  };
}
