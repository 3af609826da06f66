/**
 * A subquery for a statement of another table's owner: the EventLog payload of the event whose
 * id is `idExpression`, an expression over the caller's row that gives a uuid, or NULL for none
 * (then nothing is found). One probe of the primary key. `eventbus dlq show` reads a relay
 * dead letter's payload this way (@eventbus/dead-letters' SHOW_DEAD_LETTER_SQL): a relay row
 * keeps no value of its own.
 */
export const EVENT_LOG_PAYLOAD_SQL = (idExpression: string) => `SELECT payload FROM eventbus.event_log WHERE id = ${idExpression}`;
