// The billing worker: one invoice per `order.placed` event, written once per event through the
// consumer's inbox (a redelivered event finds its inbox row and is skipped).
import { EventConsumer } from '@eventbus/consumer';
import { config } from './config.js';
import { invoices } from './schema.js';

const settings = config();
const consumer = new EventConsumer({
  brokers: settings.brokers,
  groupId: process.env.BILLING_GROUP_ID || 'order-service-billing',
  connectionString: settings.databaseUrl,
  routing: { prefix: settings.topicPrefix },
  fromBeginning: true,
});

consumer.subscribe({
  eventTypes: ['order.placed'],
  handler: async (event, ctx) => {
    const payload = event.payload as { orderId: string; totalCents: number };
    await ctx.processOnce(async (tx) => {
      await tx.insert(invoices).values({ orderId: payload.orderId, tenantId: event.tenantId, totalCents: payload.totalCents });
    });
  },
});

await consumer.start();
console.log(JSON.stringify({ worker: 'started' }));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void consumer.stop().then(() => process.exit(0)));
}
