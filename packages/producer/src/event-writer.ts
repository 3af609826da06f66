import type { PgDatabase } from 'drizzle-orm/pg-core';
import type { NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import { currentCorrelationId, currentTraceContext, EventBusError, uuidv7 } from '@eventbus/core';
import { shardForTenant } from '@eventbus/schema';
import { findOriginalsQuery, insertEventsQuery, type InsertRow, type OriginalRow, type Query } from '@eventbus/outbox';
import { type EventContract, isEventContract, validatePayload } from '@eventbus/contracts';
import type { ContractEvent, ContractEventInput, EventInput, WriteResult } from './types.js';
import { DEFAULT_VALIDATION_LIMITS, validateEvent, type ValidatedEvent, type ValidationLimits } from './validate-event.js';

/** A Drizzle node-postgres database or a transaction from `db.transaction(async (tx) => ...)`. */
// biome-ignore lint/suspicious/noExplicitAny: any schema of the caller's own: the writer only runs its own SQL on it
export type DrizzleExecutor = PgDatabase<NodePgQueryResultHKT, any, any>;

export interface EventWriterOptions extends Partial<ValidationLimits> {
  /**
   * Run the insert as a named prepared statement, planned once per connection. Default
   * true: planning the batch insert's three CTEs cost more than running it (`pnpm bench
   * --only producer`). Turn it off behind PgBouncer in transaction mode, older than 1.21 or with
   * `max_prepared_statements = 0` (1.21's default): it cannot keep a prepared statement
   * between transactions.
   */
  preparedStatements?: boolean;
}

/**
 * Writes events through the caller's database or transaction, never a connection of its
 * own: given a transaction, the events commit or roll back with the caller's domain rows.
 *
 * ```ts
 * await db.transaction(async (tx) => {
 *   await tx.insert(orders).values(order)
 *   await new EventWriter(tx).writeEventWithOutbox({ tenantId, eventKey: `order-${order.id}-placed`, eventType: 'order.placed', payload: order })
 * })
 * ```
 */
export class EventWriter {
  private readonly limits: ValidationLimits;
  private readonly preparedStatements: boolean;

  constructor(
    private readonly db: DrizzleExecutor,
    options: EventWriterOptions = {},
  ) {
    const { preparedStatements = true, ...limits } = options;
    this.limits = { ...DEFAULT_VALIDATION_LIMITS, ...limits };
    this.preparedStatements = preparedStatements;
  }

  /** Appends to the EventLog only (audit, replay; not published). Returns the event id (the original one for a duplicate). */
  writeEvent<C extends EventContract>(contract: C, input: ContractEventInput<C>): Promise<string>;
  writeEvent(input: EventInput): Promise<string>;
  async writeEvent(first: EventInput | EventContract, second?: ContractEventInput<EventContract>): Promise<string> {
    const input = isEventContract(first) ? await contractInput(first, second) : first;
    const event = this.prepare([input])[0]!;
    const result = await this.execute<InsertRow>(insertEventsQuery([event], { withOutbox: false }));
    return (await this.resolveDuplicates([event], result))[0]!.eventLogId;
  }

  /**
   * Appends to the EventLog and queues the event for the relay, in one round trip. With a
   * contract, the payload is checked by its schema first (a PayloadValidationError, code
   * INVALID_PAYLOAD, before any SQL) and the contract gives the type and version.
   */
  writeEventWithOutbox<C extends EventContract>(contract: C, input: ContractEventInput<C>): Promise<WriteResult>;
  writeEventWithOutbox(input: EventInput): Promise<WriteResult>;
  async writeEventWithOutbox(first: EventInput | EventContract, second?: ContractEventInput<EventContract>): Promise<WriteResult> {
    const input = isEventContract(first) ? await contractInput(first, second) : first;
    const event = this.prepare([input])[0]!;
    const result = await this.execute<InsertRow>(insertEventsQuery([event], { withOutbox: true }));
    return (await this.resolveDuplicates([event], result))[0]!;
  }

  /**
   * Writes many events with their outbox rows in one statement. Every input is validated
   * first (a contract's event, made by `contractEvent`, by its schema); one bad input throws
   * and nothing is written. Results keep the input order.
   */
  async writeEventsWithOutbox(inputs: ReadonlyArray<EventInput | ContractEvent>): Promise<WriteResult[]> {
    if (!Array.isArray(inputs)) throw new TypeError('writeEventsWithOutbox expects an array of events');
    if (inputs.length === 0) return [];
    const plain = await Promise.all(inputs.map((input, i) => (isContractEvent(input) ? contractInput(input.contract, input.input, i) : input)));
    const events = this.prepare(plain);
    const result = await this.execute<InsertRow>(insertEventsQuery(events, { withOutbox: true }));
    return this.resolveDuplicates(events, result);
  }

  private prepare(inputs: readonly EventInput[]): PreparedEvent[] {
    const trace = currentTraceContext();
    let correlation: string | undefined;
    return inputs.map((input, index) => {
      const valid = validateEvent(input, this.limits, inputs.length > 1 ? index : undefined);
      return {
        ...valid,
        id: uuidv7(),
        correlationId: valid.correlationId ?? (correlation ??= currentCorrelationId()),
        shard: shardForTenant(valid.tenantId),
        traceparent: trace.traceparent,
        tracestate: trace.tracestate,
      };
    });
  }

  /**
   * Runs `query` on the caller's database or transaction, through the session of the caller's
   * Drizzle object, so it joins the caller's transaction. With a `name`, as a named prepared
   * statement: node-postgres prepares it once per connection and then only binds and
   * executes, skipping the plan that cost ~0.4 ms of a 2-core machine per batch write.
   */
  private async execute<Row>(query: Query & { name?: string }): Promise<Row[]> {
    const name = this.preparedStatements ? query.name : undefined;
    const result = (await this.db._.session.prepareQuery(query, undefined, name, false).execute()) as { rows: unknown[] };
    return result.rows as Row[];
  }

  /**
   * Rows that hit the unique (tenant_id, event_key) index were not inserted. Their original
   * ids are read in a second statement: the first statement's snapshot was taken before it
   * waited for a concurrent writer of the same key, so it cannot see that writer's row.
   */
  private async resolveDuplicates(events: PreparedEvent[], rows: InsertRow[]): Promise<WriteResult[]> {
    const byPosition = new Map(rows.map((r) => [Number(r.position), r]));
    const results: Array<WriteResult | undefined> = events.map((event, i) => {
      const row = byPosition.get(i + 1);
      return row?.inserted ? { eventLogId: event.id, outboxId: row.outbox_id, duplicate: false } : undefined;
    });
    const missing = events.filter((_, i) => results[i] === undefined);
    if (missing.length > 0) {
      const found = await this.execute<OriginalRow>(findOriginalsQuery(missing));
      const byKey = new Map(found.map((r) => [`${r.tenant_id}\u0000${r.event_key}`, r]));
      events.forEach((event, i) => {
        if (results[i]) return;
        const original = byKey.get(`${event.tenantId}\u0000${event.eventKey}`);
        if (!original) {
          // The conflicting row is invisible to this transaction (REPEATABLE READ or SERIALIZABLE
          // isolation with a concurrent writer): retrying the transaction resolves it.
          throw new Error(`event ${event.tenantId}/${event.eventKey} conflicts with a concurrent write not visible to this transaction; retry the transaction`);
        }
        results[i] = { eventLogId: original.id, outboxId: original.outbox_id, duplicate: true };
      });
    }
    return results as WriteResult[];
  }
}

/**
 * A contract's input as an untyped one: the schema's output as the payload (what a consumer's
 * schema then accepts), the contract's type and version. Throws PayloadValidationError.
 */
async function contractInput(contract: EventContract, input: ContractEventInput<EventContract> | undefined, position?: number): Promise<EventInput> {
  if (input === null || typeof input !== 'object') {
    const where = position === undefined ? '' : `events[${position}].`;
    throw new EventBusError('INVALID_EVENT', `${where}input must be an object with eventKey, tenantId and payload (writing ${contract.type})`, {
      details: { field: 'input', position },
    });
  }
  const payload = await validatePayload(contract, input.payload, position);
  return { ...input, eventType: contract.type, version: contract.version, payload };
}

function isContractEvent(value: unknown): value is ContractEvent {
  return typeof value === 'object' && value !== null && isEventContract((value as Partial<ContractEvent>).contract);
}

interface PreparedEvent extends ValidatedEvent {
  id: string;
  correlationId: string;
  shard: number;
  traceparent: string | null;
  tracestate: string | null;
}
