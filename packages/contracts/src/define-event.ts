import type { StandardSchemaV1 } from '@standard-schema/spec';
import { EventBusError, eventTypeProblem, invalidConfig } from '@eventbus/core';

/** Marks a value made by `defineEvent`, so the writer and the consumer tell a contract from an untyped input. */
const CONTRACT = 'eventbus.event-contract' as const;

/** The highest version the event log's column (smallint) holds. */
const MAX_VERSION = 32_767;

/**
 * One step of an upcast chain: turns a payload of version `n` into one of version `n + 1`.
 * The older shapes are the caller's to declare, hence the loose parameter.
 */
// biome-ignore lint/suspicious/noExplicitAny: an old version's shape is declared by the caller (or not at all)
export type Upcast = (payload: any) => unknown;

/** Arguments of `defineEvent`. */
export interface EventContractDefinition<Type extends string, Schema extends StandardSchemaV1> {
  /** The event type, `{resource}.{action}` (see @eventbus/core event-type). */
  type: Type;
  /** The payload's schema version, an integer from 1. Default 1. */
  version?: number;
  /** Any Standard Schema validator (zod, valibot, arktype, ...) of the current version's payload. */
  schema: Schema;
  /** `{ 1: (v1) => v2, 2: (v2) => v3 }`: one step per older version, applied in order. */
  upcast?: Readonly<Record<number, Upcast>>;
  /** The payload's JSON Schema (draft-07) for the AsyncAPI document, when the schema cannot produce one itself. */
  jsonSchema?: Record<string, unknown>;
  /** One line for the AsyncAPI document. */
  description?: string;
}

/** One event type at one version, with the schema of its payload; made by `defineEvent`. */
export interface EventContract<Type extends string = string, Schema extends StandardSchemaV1 = StandardSchemaV1> {
  readonly kind: typeof CONTRACT;
  readonly type: Type;
  readonly version: number;
  readonly schema: Schema;
  readonly upcast: Readonly<Record<number, Upcast>>;
  readonly jsonSchema: Record<string, unknown> | undefined;
  readonly description: string | undefined;
}

/** What a producer passes as the payload of a contract's event (the schema's input type). */
export type ContractInput<C extends EventContract> = StandardSchemaV1.InferInput<C['schema']>;

/** What a handler receives as the payload of a contract's event (the schema's output type). */
export type ContractPayload<C extends EventContract> = StandardSchemaV1.InferOutput<C['schema']>;

/**
 * Declares an event type's payload once, for the producer (checked before the write), the
 * consumer (checked and upcast before the handler) and the AsyncAPI document.
 *
 * ```ts
 * const orderPlaced = defineEvent({ type: 'order.placed', version: 2, schema: z.object({ total: z.number() }),
 *   upcast: { 1: (v1: { amount: number }) => ({ total: v1.amount }) } })
 * ```
 */
export function defineEvent<const Type extends string, Schema extends StandardSchemaV1>(
  definition: EventContractDefinition<Type, Schema>,
): EventContract<Type, Schema> {
  if (typeof definition !== 'object' || definition === null) throw invalidConfig('defineEvent()', 'an object with type and schema', definition);
  const { type, version = 1, schema, upcast = {}, jsonSchema, description } = definition;
  const typeProblem = typeof type === 'string' ? eventTypeProblem(type) : 'is not a string';
  if (typeProblem) throw new EventBusError('INVALID_EVENT_TYPE', `defineEvent: type ${JSON.stringify(type)} ${typeProblem}`, { details: { field: 'type' } });
  if (!Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
    throw invalidConfig(`defineEvent(${type}).version`, `an integer from 1 to ${MAX_VERSION}`, version);
  }
  if (!isStandardSchema(schema)) {
    throw invalidConfig(
      `defineEvent(${type}).schema`,
      'a Standard Schema validator (zod, valibot, arktype, ...: an object with ["~standard"].validate)',
      schema,
    );
  }
  for (const [from, step] of Object.entries(upcast)) {
    const n = Number(from);
    if (!Number.isInteger(n) || n < 1 || n >= version) {
      throw invalidConfig(`defineEvent(${type}).upcast`, `keys that are older versions (1 to ${version - 1})`, from);
    }
    if (typeof step !== 'function') throw invalidConfig(`defineEvent(${type}).upcast[${from}]`, 'a function (payload) => next version payload', step);
  }
  if (jsonSchema !== undefined && (typeof jsonSchema !== 'object' || jsonSchema === null)) {
    throw invalidConfig(`defineEvent(${type}).jsonSchema`, 'a JSON Schema object', jsonSchema);
  }
  return Object.freeze({ kind: CONTRACT, type, version, schema, upcast: Object.freeze({ ...upcast }), jsonSchema, description });
}

/** True for a value made by `defineEvent` (also by another copy of this package). */
export function isEventContract(value: unknown): value is EventContract {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === CONTRACT;
}

function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  const props = (value as { '~standard'?: { validate?: unknown } } | null)?.['~standard'];
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof props?.validate === 'function';
}
