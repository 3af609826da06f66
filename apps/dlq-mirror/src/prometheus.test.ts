import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { renderPrometheus } from './prometheus.js';

// A database the scrape cannot reach (nothing listens on port 1): the endpoint still answers
// with the counters, leaves the dead-letter gauges out, and counts and reports the failure, so
// a missing gauge never silently reads as "no dead letters".
const unreachable = new pg.Pool({ connectionString: 'postgres://eventbus@127.0.0.1:1/none', connectionTimeoutMillis: 2000 });
unreachable.on('error', () => undefined);
afterAll(() => unreachable.end());

describe('renderPrometheus without the database', () => {
  it('answers, leaves the gauges out, counts and reports each failed query', async () => {
    const reported: unknown[] = [];
    const failures = { count: 0, onFailure: (error: unknown) => reported.push(error) };
    const counts = { mirrored: 3, seenBefore: 1, unstorable: 0 };
    await renderPrometheus(counts, unreachable, failures);
    const text = await renderPrometheus(counts, unreachable, failures);
    expect(text).toContain('eventbus_dlq_mirror_mirrored_total 3');
    expect(text).not.toMatch(/^eventbus_dlq_size/m);
    expect(text).not.toMatch(/^eventbus_dlq_oldest_age_seconds/m);
    expect(text).toContain('eventbus_dlq_mirror_dlq_query_failures_total 2');
    expect(reported).toHaveLength(2);
    expect(String((reported[0] as Error).message)).toMatch(/ECONNREFUSED/);
  });
});
