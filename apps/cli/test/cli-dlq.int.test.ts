import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { NonRetriableError } from '@eventbus/core';
import { COPY_TOPIC_HEADROOM_BYTES, retryWhileTopicUnknown } from '@eventbus/kafka';
import { DlqMirror, EventConsumer } from '@eventbus/consumer';
import { uniqueName, waitFor } from '@eventbus/dev-services';
import { cliFixture, createTopics, eventIds, runCli, runCliInProcess, seedEvents } from './cli-fixture.js';

let f: Awaited<ReturnType<typeof cliFixture>>;
beforeAll(async () => {
  f = await cliFixture('cli-dlq');
});
afterAll(async () => f?.close());

describe('eventbus dlq list|show|retry|discard (the CLI as a process, real Postgres and Kafka)', () => {
  it('lists, shows, re-drives once to the failing group only, and discards; --json parses', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const tenant = uniqueName('shop-');
    const billing = uniqueName('billing-');
    const audit = uniqueName('audit-');
    await seedEvents(f.pool, { tenantId: tenant, count: 6, start: '2026-06-01T00:00:00Z', types: ['order.placed'] });
    const ids = await eventIds(f.pool, tenant);
    const failing = new Set(ids.slice(0, 3));

    // billing fails the first three orders once (a card processor outage), audit never fails.
    const calls = { billing: new Map<string, number>(), audit: new Map<string, number>() };
    const bump = (m: Map<string, number>, id: string) => m.set(id, (m.get(id) ?? 0) + 1).get(id)!;
    const common = { brokers: f.brokers, routing: { prefix }, fromBeginning: true, topicPartitions: 3, onMetric: () => {} };
    const topics = [`${prefix}order`, ...[billing, audit].flatMap((g) => [`${prefix}retry.${g}`, `${prefix}dlq.${g}`])];
    await createTopics(
      f.brokers,
      topics.map((topic) => ({ topic })),
    );
    const billingConsumer = f.track(new EventConsumer({ ...common, groupId: billing }));
    billingConsumer.subscribe({
      eventTypes: ['order.*'],
      name: 'charge',
      handler: async (event) => {
        if (bump(calls.billing, event.id) === 1 && failing.has(event.id)) throw new NonRetriableError('card processor declined: 503');
      },
    });
    const auditConsumer = f.track(new EventConsumer({ ...common, groupId: audit }));
    auditConsumer.subscribe({ eventTypes: ['order.*'], handler: async (event) => void bump(calls.audit, event.id) });
    await billingConsumer.start();
    await auditConsumer.start();
    const mirror = f.track(
      new DlqMirror({ brokers: f.brokers, pool: f.pool, routing: { prefix }, groups: [billing], groupId: uniqueName('mirror-'), topicPartitions: 3 }),
    );
    await mirror.start();

    // The events reach Kafka through the CLI itself.
    const replay = await runCli(['replay', '--tenant', tenant, '--json', '--yes'], env);
    expect(replay.code, replay.stderr).toBe(0);
    await waitFor(async () => (await f.pool.query('SELECT count(*)::int AS n FROM eventbus.dead_letters')).rows[0].n === 3, {
      timeoutMs: 30_000,
      message: '3 dead letters',
    });
    await waitFor(() => calls.audit.size === 6, { timeoutMs: 30_000, message: 'audit saw every order' });
    // A relay-stage dead letter too (Kafka refused the event): re-driven through the outbox.
    const relayEvent = ids[5]!;
    await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, event_id, tenant_id, event_type, event_key, error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ($1, 'relay', $2, $3, 'order.placed', 'k', 'PublishError', 'MESSAGE_TOO_LARGE', 6, now(), now())`,
      [`relay:${relayEvent}`, relayEvent, tenant],
    );

    const list = await runCli(['dlq', 'list', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const rows = list.json<Array<{ id: string; stage: string; groupId: string; eventId: string; status: string; attempts: number; errorClass: string }>>();
    expect(rows).toHaveLength(4);
    const consumerRows = rows.filter((r) => r.stage === 'consumer');
    expect(new Set(consumerRows.map((r) => r.eventId))).toEqual(failing);
    for (const r of consumerRows) expect(r).toMatchObject({ groupId: billing, status: 'pending', attempts: 1, errorClass: 'NonRetriableError' });
    const relayRow = rows.find((r) => r.stage === 'relay')!;
    // Read-only variations run in-process through the same built entry point (cheaper than a process each).
    const inProcess = async (args: string[]) => JSON.parse((await runCliInProcess(args, env)).stdout);
    expect(await inProcess(['dlq', 'list', '--group', billing, '--type', 'order.*', '--tenant', tenant, '--since', '2020-01-01', '--json'])).toHaveLength(3);
    expect(await inProcess(['dlq', 'list', '--group', billing, '--since', '2020-01-01', '--until', '2020-01-02', '--json'])).toEqual([]);
    expect(await inProcess(['dlq', 'list', '--stage', 'relay', '--json'])).toEqual([expect.objectContaining({ id: relayRow.id })]);
    expect(await inProcess(['dlq', 'list', '--tenant', "' OR 1=1 --", '--json'])).toEqual([]);
    const table = await runCliInProcess(['dlq', 'list'], env);
    expect(table.stdout).toMatch(/^ID\s+STAGE\s+GROUP\s+TENANT\s+TYPE/);
    expect(table.stdout).toContain('card processor declined: 503');

    const [first, second, third] = consumerRows.map((r) => r.id).sort((a, b) => Number(a) - Number(b));
    const show = await runCli(['dlq', 'show', first!, '--json'], env);
    expect(show.code, show.stderr).toBe(0);
    const detail = show.json();
    expect(detail).toMatchObject({
      id: first,
      stage: 'consumer',
      groupId: billing,
      tenantId: tenant,
      attempts: 1,
      errorMessage: 'card processor declined: 503',
      topic: `${prefix}order`,
    });
    expect(detail.payload).toEqual({ seq: expect.any(Number) });
    expect(detail.headers.ce_id).toBe(detail.eventId);
    expect(detail.errorStack).toContain('NonRetriableError');
    const shownText = await runCliInProcess(['dlq', 'show', relayRow.id], env);
    expect(shownText.stdout).toMatch(/stage:\s+relay/);
    expect(shownText.stdout).toContain('"seq": 5'); // a relay row's payload comes from the EventLog

    // Re-drive one row twice: sent once, to billing's retry topic only; billing handles it again, audit does not.
    const retried = await runCli(['dlq', 'retry', first!], env);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toContain(`re-driven to the retry topic of group ${billing}`);
    const again = await runCli(['dlq', 'retry', first!, '--json'], env);
    expect(again.json()).toEqual([expect.objectContaining({ id: first, outcome: 'already_redriven' })]);
    const firstEvent = detail.eventId as string;
    await waitFor(() => calls.billing.get(firstEvent) === 2, { timeoutMs: 30_000, message: 'billing handled the re-driven event' });
    expect(await f.messageCount(`${prefix}retry.${billing}`)).toBe(1);
    expect(await f.messageCount(`${prefix}retry.${audit}`)).toBe(0);
    expect(calls.audit.get(firstEvent)).toBe(1);

    // Bulk: dry run changes nothing; without a terminal, --yes is required.
    const dry = await runCli(['dlq', 'retry', '--all', '--group', billing, '--dry-run', '--json'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(
      dry
        .json()
        .map((l: { id: string; outcome: string }) => [l.id, l.outcome])
        .sort(),
    ).toEqual(
      [
        [second, 'would_redrive'],
        [third, 'would_redrive'],
      ].sort(),
    );
    const refused = await runCli(['dlq', 'retry', '--all', '--group', billing], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Refusing without --yes');
    expect(await f.messageCount(`${prefix}retry.${billing}`)).toBe(1);

    const discarded = await runCli(['dlq', 'discard', second!, '--json'], env);
    expect(discarded.json()).toEqual([expect.objectContaining({ id: second, outcome: 'discarded' })]);
    const bulk = await runCli(['dlq', 'retry', '--all', '--group', billing, '--yes', '--json'], env);
    expect(bulk.json()).toEqual([expect.objectContaining({ id: third, outcome: 'redriven', stage: 'consumer' })]);
    expect(await f.messageCount(`${prefix}retry.${billing}`)).toBe(2);

    // The relay row goes back through the outbox: no Kafka needed for that.
    const { KAFKA_BROKERS: _unused, ...noKafka } = env;
    const relayRetry = await runCli(['dlq', 'retry', relayRow.id, '--json'], noKafka);
    expect(relayRetry.code, relayRetry.stderr).toBe(0);
    expect(relayRetry.json()).toEqual([expect.objectContaining({ outcome: 'redriven', stage: 'relay' })]);
    expect((await f.pool.query('SELECT count(*)::int AS n FROM eventbus.outbox WHERE event_id = $1', [relayEvent])).rows[0].n).toBe(1);

    const statuses: Array<{ id: string; status: string }> = await inProcess(['dlq', 'list', '--status', 'all', '--json']);
    expect(Object.fromEntries(statuses.map((r) => [r.id, r.status]))).toEqual({
      [first!]: 'redriven',
      [second!]: 'discarded',
      [third!]: 'redriven',
      [relayRow.id]: 'redriven',
    });
    const missing = await runCli(['dlq', 'retry', '424242', '--json'], env);
    expect(missing.code).toBe(3);
    expect(missing.json()).toEqual([expect.objectContaining({ outcome: 'not_found' })]);
  });

  it('--all goes on past a row that fails: every row is reported (also in --json), then exit 3 for bad data or 4 for an unreachable Kafka', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const tenant = uniqueName('bulk-');
    await seedEvents(f.pool, { tenantId: tenant, count: 2, start: '2026-09-01T00:00:00Z', types: ['order.placed'] });
    const [goodEvent, otherEvent] = await eventIds(f.pool, tenant);
    const relayRow = async (key: string, eventId: string | null) =>
      (
        await f.pool.query(
          `INSERT INTO eventbus.dead_letters (dedupe_key, stage, event_id, tenant_id, event_type, event_key, error_class, error_message, attempts, first_failed_at, last_failed_at)
           VALUES ($1, 'relay', $2, $3, 'order.placed', 'k', 'PublishError', 'MESSAGE_TOO_LARGE', 6, now(), now()) RETURNING id::text`,
          [uniqueName(key), eventId, tenant],
        )
      ).rows[0].id as string;
    // Newest first: the broken row (no event_id) is acted on between two good ones.
    const good1 = await relayRow('good1-', goodEvent!);
    const broken = await relayRow('broken-', null);
    const good2 = await relayRow('good2-', otherEvent!);

    const bulk = await runCli(['dlq', 'retry', '--all', '--tenant', tenant, '--yes', '--json'], env);
    expect(bulk.code, bulk.stderr).toBe(3);
    const lines = bulk.json<Array<{ id: string; outcome: string; message: string }>>();
    expect(lines.map((l) => [l.id, l.outcome])).toEqual([
      [good2, 'redriven'],
      [broken, 'failed'],
      [good1, 'redriven'],
    ]);
    expect(lines[1]!.message).toMatch(new RegExp(`dead letter ${broken} not re-driven: .*event_id`));
    expect(bulk.stderr).toContain('1 of 3 dead letter(s) failed');
    // The rows around the failure were really done; the failed one is untouched.
    const status = async (id: string) => (await f.pool.query('SELECT status FROM eventbus.dead_letters WHERE id = $1', [id])).rows[0].status;
    expect([await status(good2), await status(broken), await status(good1)]).toEqual(['redriven', 'pending', 'redriven']);
    expect((await f.pool.query('SELECT count(*)::int AS n FROM eventbus.outbox WHERE event_id = ANY($1::uuid[])', [[goodEvent, otherEvent]])).rows[0].n).toBe(
      2,
    );

    // Kafka unreachable: a consumer-stage row fails with exit 4; the relay-stage row after it is still re-driven.
    const relay = await relayRow('relay3-', goodEvent!);
    await f.pool.query(`UPDATE eventbus.dead_letters SET status = 'discarded' WHERE id = $1`, [broken]);
    const consumerRow = (
      await f.pool.query(
        `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, topic, partition, "offset", message_key, value, headers, error_class, error_message, attempts, first_failed_at, last_failed_at)
         VALUES ($1, 'consumer', 'g', $2, $3, 'order.placed', $4, 0, '1', $3, '{}', '{}'::jsonb, 'Error', 'boom', 1, now(), now()) RETURNING id::text`,
        [uniqueName('cons-'), goodEvent, tenant, `${prefix}order`],
      )
    ).rows[0].id as string;
    const noKafka = await runCli(['dlq', 'retry', '--all', '--tenant', tenant, '--yes'], { ...env, KAFKA_BROKERS: '127.0.0.1:1' }, 60_000);
    expect(noKafka.code, noKafka.stderr).toBe(4);
    expect(noKafka.stdout).toMatch(new RegExp(`dead letter ${consumerRow} not re-driven: cannot connect to Kafka at 127\\.0\\.0\\.1:1 \\(KAFKA_BROKERS\\)`));
    expect(noKafka.stdout).toContain(`dead letter ${relay} re-driven to the outbox`);
    expect([await status(consumerRow), await status(relay)]).toEqual(['pending', 'redriven']);
  }, 90_000);

  it('marks a row whose DLQ copy was too large for the DLQ topic, shows where the event is, re-drives the original read from there, and refuses when it is gone', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const group = uniqueName('big-');
    const tenant = uniqueName('shop-');
    const eventTopic = `${prefix}order`;
    const retryTopic = `${prefix}retry.${group}`;
    // The original on its topic: partition 2, offset 0.
    await createTopics(f.brokers, [{ topic: eventTopic, numPartitions: 3 }]);
    const producer = new Kafka({ brokers: f.brokers, logLevel: logLevel.NOTHING }).producer();
    // The record's timestamp, which the row keeps exact (the DLQ headers' origin timestamp): a re-drive checks it.
    const sentAt = Date.now() - 5000;
    await producer.connect();
    await retryWhileTopicUnknown(() =>
      producer.send({
        topic: eventTopic,
        messages: [
          {
            partition: 2,
            key: tenant,
            value: '{"total":42}',
            timestamp: String(sentAt),
            headers: { ce_id: 'e-1', ce_type: 'order.placed', ce_tenantid: tenant },
          },
        ],
      }),
    );
    await producer.disconnect();
    // As the DLQ mirror stores a record without the value (eventbus-dlq-truncated): value and value_bytes NULL.
    const insert = async (offset: number) =>
      (
        await f.pool.query(
          `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, event_key, topic, partition, "offset",
             headers, error_class, error_message, attempts, first_failed_at, last_failed_at, message_timestamp, header_names, header_values)
           VALUES ($1, 'consumer', $2, 'e-1', $3, 'order.placed', 'k', $4, 2, $5, $6::jsonb, 'NonRetriableError', 'cannot bill', 1, now(), now(),
                   'epoch'::timestamptz + $7 * interval '1 millisecond', '{}', '{}')
           RETURNING id::text`,
          [
            `consumer:${group}:${eventTopic}:2:${offset}`,
            group,
            tenant,
            eventTopic,
            offset,
            JSON.stringify({ 'eventbus-dlq-truncated': '1100000', 'eventbus-dlq-retry-topic': retryTopic }),
            sentAt,
          ],
        )
      ).rows[0].id as string;
    const id = await insert(0);
    const list = await runCliInProcess(['dlq', 'list', '--group', group], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('[value not stored] NonRetriableError: cannot bill');
    const listed = JSON.parse((await runCliInProcess(['dlq', 'list', '--group', group, '--json'], env)).stdout);
    expect(listed).toMatchObject([{ id, refusedCopyBytes: 1_100_000 }]);
    const show = await runCliInProcess(['dlq', 'show', id], env);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(
      `(not stored: the DLQ copy, 1100000 bytes, was larger than the DLQ topic accepts; the event is on ${eventTopic} partition 2 offset 0, where dlq retry reads it`,
    );
    // --dry-run says where the original is read from, by id and with --all.
    const planned = `would re-drive dead letter ${id} (order.placed, tenant ${tenant}), reading the original from ${eventTopic} partition 2 offset 0 (the row holds no value), to ${retryTopic} (group ${group} only)`;
    const dryRun = await runCliInProcess(['dlq', 'retry', id, '--dry-run'], env);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stdout).toContain(planned);
    const dryRunAll = await runCliInProcess(['dlq', 'retry', '--all', '--group', group, '--dry-run'], env);
    expect(dryRunAll.stdout).toContain(planned);

    const retry = await runCliInProcess(['dlq', 'retry', id], env);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.stdout).toContain(`dead letter ${id} re-driven to the retry topic of group ${group}`);
    // The re-drive created the retry topic; read from its beginning.
    const retried = await f.collect([retryTopic]);
    await retried.waitForEvents(1);
    expect(retried.messages[0]).toMatchObject({ key: tenant, value: '{"total":42}', headers: { ce_id: 'e-1', ce_tenantid: tenant, 'eventbus-attempt': '1' } });
    expect((await f.pool.query('SELECT status FROM eventbus.dead_letters WHERE id = $1', [id])).rows[0].status).toBe('redriven');

    // A row whose offset the partition does not hold (it ends at 1): refused with what to do instead, the row stays pending.
    const gone = await insert(41);
    const refused = await runCliInProcess(['dlq', 'retry', gone], env);
    expect(refused.code).toBe(3);
    expect(refused.stdout + refused.stderr).toContain(
      `dead letter ${gone} holds no value and its original is gone: ${eventTopic} partition 2 offset 41 is not retained`,
    );
    // Event e-1 was not written through this database: no replay from here would send it.
    expect(refused.stdout + refused.stderr).toContain(`This database's EventLog has no event e-1 (pruned by retention, or written through another database`);
    expect((await f.pool.query('SELECT status FROM eventbus.dead_letters WHERE id = $1', [gone])).rows[0].status).toBe('pending');
    expect(retried.messages).toHaveLength(1);
  });

  it('advises a replay by event id that selects the event alone: not the other events of its transaction, nor one written when the relay published it', async () => {
    const env = f.env(f.prefix());
    const group = uniqueName('lagging-');
    const tenant = uniqueName('shop-');
    const addEvent = async (key: string, createdAt: string) =>
      (
        await f.pool.query(
          `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, created_at)
           VALUES (gen_random_uuid(), $1, $2, 'order.placed', '{}', 'c', $3) RETURNING id::text`,
          [tenant, key, createdAt],
        )
      ).rows[0].id as string;
    // The relay was ten minutes behind: created at 10:00:00.123456, its record written at 10:10:00.123.
    const createdAt = '2026-06-01T10:00:00.123456Z';
    const recordAt = Date.parse('2026-06-01T10:10:00.123Z');
    const event = await addEvent('k-1', createdAt);
    // Another event of its transaction (same created_at, same type): a time window cannot leave it out.
    const sibling = await addEvent('k-2', createdAt);
    // An order placed when the record was written: a window around the record's timestamp selects this one instead.
    const placedAtRecordTime = await addEvent('k-3', new Date(recordAt).toISOString());
    // Its DLQ record holds no value, and its topic is gone (deleted since): the original cannot be read.
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, event_key, topic, partition, "offset",
         headers, error_class, error_message, attempts, first_failed_at, last_failed_at, message_timestamp, header_names, header_values)
       VALUES ($1, 'consumer', $2, $3, $4, 'order.placed', 'k-1', $5, 0, 0, $6::jsonb, 'NonRetriableError', 'cannot bill', 1, now(), now(),
               'epoch'::timestamptz + $7 * interval '1 millisecond', '{}', '{}')
       RETURNING id::text`,
      [`consumer:${group}:${event}`, group, event, tenant, uniqueName('deleted-topic-'), JSON.stringify({ 'eventbus-dlq-truncated': '1100000' }), recordAt],
    );
    const refused = await runCliInProcess(['dlq', 'retry', rows[0].id], env);
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    const output = refused.stdout + refused.stderr;
    const flags = /\(eventbus replay ([^)]*)\)/.exec(output)?.[1];
    expect(flags, output).toBeDefined();
    expect(output).toContain(`The EventLog has event ${event}, created at ${createdAt}`);

    // The advised replay, run as a dry run, selects the event and nothing else.
    const args = flags!.split(' ').map((arg) => arg.replace(/^'(.*)'$/, '$1'));
    const run = await runCliInProcess(['replay', ...args, '--dry-run', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const selected = JSON.parse(run.stdout);
    expect(selected, `${flags} selects the other events too (${sibling}, ${placedAtRecordTime})`).toMatchObject({
      total: 1,
      first: { id: event },
      last: { id: event },
    });
    expect(flags).toBe(`--tenant ${tenant} --group ${group} --event-id ${event}`);
    expect((await f.pool.query('SELECT status FROM eventbus.dead_letters WHERE id = $1', [rows[0].id])).rows[0].status).toBe('pending');
  });

  it('shows a dead letter whose key and tenant were left out of its DLQ record as not stored, with where the original is', async () => {
    const env = f.env(f.prefix());
    const group = uniqueName('huge-key-');
    // As the DLQ mirror stores a coordinates-only record (eventbus-dlq-dropped): no key, no tenant, no value.
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, event_type, topic, partition, "offset",
         headers, error_class, error_message, attempts, first_failed_at, last_failed_at, header_names, header_values)
       VALUES ($1, 'consumer', $2, 'e-2', 'order.placed', 'eventbus.order', 1, 7, $3::jsonb, 'NonRetriableError', 'cannot bill', 1, now(), now(), '{}', '{}')
       RETURNING id::text`,
      [
        `consumer:${group}:eventbus.order:1:7`,
        group,
        JSON.stringify({
          'eventbus-dlq-truncated': '60500',
          'eventbus-dlq-dropped': 'key=20000,ce_tenantid=20000,eventbus-dlq-error-stack=900',
          'eventbus-dlq-retry-topic': `x.retry.${group}`,
        }),
      ],
    );
    const id = rows[0].id as string;
    const list = await runCliInProcess(['dlq', 'list', '--group', group], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain('[value not stored] NonRetriableError: cannot bill');
    const show = await runCliInProcess(['dlq', 'show', id], env);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^tenant: +\(not stored: 20000 bytes, larger than the DLQ topic accepts; the original holds it\)$/m);
    expect(show.stdout).toMatch(/^key: +\(not stored: 20000 bytes, larger than the DLQ topic accepts; the original holds it\)$/m);
    expect(show.stdout).toMatch(/^origin: +eventbus\.order partition 1 offset 7$/m);
    expect(show.stdout).toContain(
      '(not stored: the DLQ copy, 60500 bytes, was larger than the DLQ topic accepts; the event is on eventbus.order partition 1 offset 7',
    );
    const json = JSON.parse((await runCliInProcess(['dlq', 'show', id, '--json'], env)).stdout);
    expect(json).toMatchObject({
      tenantId: null,
      messageKey: null,
      refusedCopyBytes: 60500,
      dropped: [
        { name: 'key', bytes: 20000 },
        { name: 'ce_tenantid', bytes: 20000 },
        { name: 'eventbus-dlq-error-stack', bytes: 900 },
      ],
    });
  });
  it('dlq retry creates a missing retry topic sized as the consumer sizes it, over the original topic, not at the broker default', async () => {
    const prefix = f.prefix();
    const env = f.env(prefix);
    const group = uniqueName('sized-');
    const eventTopic = `${prefix}order`;
    const retryTopic = `${prefix}retry.${group}`;
    // Above the broker's default (1 MiB): the retry topic must follow the event topic.
    const eventLimit = 2_000_000;
    await createTopics(f.brokers, [{ topic: eventTopic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(eventLimit) }] }]);
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, topic, partition, "offset",
         message_key, value, headers, error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ($1, 'consumer', $2, 'e-3', 'acme', 'order.placed', $3, 0, 0, 'acme', '{}', $4::jsonb, 'Error', 'billing down', 6, now(), now())
       RETURNING id::text`,
      [`consumer:${group}:${eventTopic}:0:0`, group, eventTopic, JSON.stringify({ ce_id: 'e-3', 'eventbus-dlq-retry-topic': retryTopic })],
    );
    const retry = await runCliInProcess(['dlq', 'retry', rows[0].id], env);
    expect(retry.code, retry.stderr).toBe(0);
    expect(await maxMessageBytes(f.brokers, retryTopic)).toBe(eventLimit + COPY_TOPIC_HEADROOM_BYTES);
    expect(await f.messageCount(retryTopic)).toBe(1);
  });
});

/** A topic's effective max.message.bytes. */
async function maxMessageBytes(brokers: string[], topic: string): Promise<number> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2 /* ConfigResourceTypes.TOPIC */, name: topic, configNames: ['max.message.bytes'] }],
    });
    return Number(resources[0]!.configEntries.find((e) => e.configName === 'max.message.bytes')!.configValue);
  } finally {
    await admin.disconnect();
  }
}
