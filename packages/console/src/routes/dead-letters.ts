import type pg from 'pg';
import type { Hono } from 'hono';
import { dlqTopicFor, errorMessage, invalidConfig, TopicRouter, type TopicRoutingOptions } from '@eventbus/core';
import {
  discardDeadLetter,
  dlqMirrorPositions,
  listDeadLetters,
  redriveDeadLetter,
  showDeadLetter,
  type DeadLetterActionResult,
  type DeadLetterDetail,
} from '@eventbus/dead-letters';
import type { MessagePublisher } from '@eventbus/kafka';
import { deadLetterFilter, deadLetterIds } from '../request-input.js';
import { redactSecrets } from '../security.js';

/** A row whose action threw: the others still run (each is its own transaction). */
type ActionLine = DeadLetterActionResult | { id: string; outcome: 'failed'; message: string };

/** The dead-letter API: list, show, retry and discard, through @eventbus/dead-letters (the table's owner). */
export function deadLetterRoutes(app: Hono, pool: pg.Pool, publisher: MessagePublisher | undefined, routing: TopicRoutingOptions): void {
  app.get('/api/dead-letters', async (c) => c.json(await listDeadLetters(pool, deadLetterFilter(c.req.query()))));

  app.get('/api/dead-letters/:id', async (c) => {
    const id = c.req.param('id');
    if (!/^[1-9]\d{0,18}$/.test(id)) return c.json({ error: `${JSON.stringify(id.slice(0, 80))} is not a dead letter id` }, 400);
    const row = await showDeadLetter(pool, id);
    if (!row) return c.json({ error: `dead letter ${id} does not exist` }, 404);
    const dlqTopic = row.groupId ? dlqTopicFor(new TopicRouter(routing).prefix, row.groupId) : null;
    return c.json({ ...detailForPage(row), dlqTopic, mirrorPositions: dlqTopic ? await dlqMirrorPositions(pool, dlqTopic) : [] });
  });

  const action = (name: 'retry' | 'discard') =>
    app.post(`/api/dead-letters/${name}`, async (c) => {
      const ids = deadLetterIds(await c.req.json().catch(() => null));
      const results: ActionLine[] = [];
      for (const id of ids) {
        try {
          results.push(name === 'retry' ? await redrive(pool, publisher, id, routing) : await discardDeadLetter(pool, id));
        } catch (error) {
          results.push({ id, outcome: 'failed', message: redactSecrets(`dead letter ${id}: ${errorMessage(error)}`) });
        }
      }
      return c.json({ results });
    });
  action('retry');
  action('discard');
}

async function redrive(pool: pg.Pool, publisher: MessagePublisher | undefined, id: string, routing: TopicRoutingOptions) {
  // A relay-stage row goes back through the outbox and needs no Kafka; a consumer-stage row does.
  return redriveDeadLetter(pool, publisher ?? NO_KAFKA, id, { routing });
}

/** The detail without raw bytes (JSON has no bytes): the payload parsed when it is JSON, else its text. */
function detailForPage(row: DeadLetterDetail) {
  const { bytes: _bytes, value, eventLogPayload, ...rest } = row;
  let payload: unknown = eventLogPayload ?? null;
  if (value !== null) {
    try {
      payload = JSON.parse(value);
    } catch {
      payload = value;
    }
  }
  return { ...rest, payload };
}

/** Stands in for Kafka when the console runs without brokers: relay rows still re-drive, consumer rows say why not. */
const NO_KAFKA: MessagePublisher = {
  connect: async () => undefined,
  disconnect: async () => undefined,
  publish: async () => {
    throw noBrokers();
  },
  // A dead letter without the value reads its original from Kafka before it publishes.
  readRecordAt: async () => {
    throw noBrokers();
  },
};

function noBrokers() {
  return invalidConfig('KAFKA_BROKERS', 'brokers to re-drive consumer dead letters to (start the console with KAFKA_BROKERS or --brokers)', 'nothing');
}
