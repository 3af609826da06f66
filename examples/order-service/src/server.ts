// POST /orders {"tenantId": "acme", "totalCents": 1299} → 201 {"id": "..."}.
// The order and its `order.placed` event commit in one transaction, or neither does.
import { createServer, type IncomingMessage } from 'node:http';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { EventWriter } from '@eventbus/producer';
import { config } from './config.js';
import { orders } from './schema.js';

const settings = config();
const pool = new pg.Pool({ connectionString: settings.databaseUrl });
const db = drizzle(pool);

async function readJson(req: IncomingMessage): Promise<unknown> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return JSON.parse(body);
}

const server = createServer(async (req, res) => {
  try {
    if (req.method !== 'POST' || req.url !== '/orders') {
      res.writeHead(404).end();
      return;
    }
    const input = (await readJson(req)) as { tenantId?: unknown; totalCents?: unknown };
    if (typeof input.tenantId !== 'string' || !Number.isInteger(input.totalCents)) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'tenantId (string) and totalCents (integer) are required' }));
      return;
    }
    const tenantId = input.tenantId;
    const totalCents = input.totalCents as number;
    const order = await db.transaction(async (tx) => {
      const [row] = await tx.insert(orders).values({ tenantId, totalCents }).returning();
      await new EventWriter(tx).writeEventWithOutbox({
        tenantId,
        eventKey: `order-${row!.id}-placed`,
        eventType: 'order.placed',
        payload: { orderId: row!.id, totalCents },
      });
      return row!;
    });
    res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: order.id }));
  } catch (error) {
    console.error(error);
    res.writeHead(500).end();
  }
});

server.listen(settings.port, () => {
  const address = server.address();
  console.log(JSON.stringify({ listening: typeof address === 'object' && address ? address.port : settings.port }));
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => server.close(() => void pool.end()));
}
