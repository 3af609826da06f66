import { describe, expect, it } from 'vitest';
import { COPY_EVENT_LOG_BY_IDS_SQL } from './event-log/audit-event-log.js';
import { COPY_PENDING_OUTBOX_SQL } from './outbox/audit-pending-outbox.js';

describe('the audit copies: table names a caller passes go into the statement text', () => {
  it('accept a temporary or plain table name', () => {
    expect(COPY_PENDING_OUTBOX_SQL('pg_temp.audit_pending', 'pg_temp.audit_log')).toContain(
      'INSERT INTO pg_temp.audit_pending (event_id)\nSELECT o.event_id FROM eventbus.outbox o JOIN pg_temp.audit_log l ON l.id = o.event_id',
    );
  });

  it.each(['audit_log; DROP TABLE eventbus.outbox', 'public."x"', 'Audit', '', 'a'.repeat(64)])('refuse %j', (name) => {
    expect(() => COPY_PENDING_OUTBOX_SQL(name, 'pg_temp.audit_log')).toThrow(/not a table name/);
    expect(() => COPY_PENDING_OUTBOX_SQL('pg_temp.audit_pending', name)).toThrow(/not a table name/);
    expect(() => COPY_EVENT_LOG_BY_IDS_SQL('pg_temp.audit_log', 'pg_temp.audit_kafka', name)).toThrow(/not a table name/);
  });
});
