/**
 * The demo's event contracts: one definition of each payload, checked by the producer before
 * the write and by the consumers before their handlers. Also a catalog module for
 * `pnpm eventbus catalog --asyncapi --catalog apps/demo/dist/catalog.js`.
 */
import { defineCatalog, defineEvent } from '@eventbus/contracts';
import { z } from 'zod';

export const orderPlaced = defineEvent({
  type: 'order.placed',
  schema: z.object({
    orderId: z.string(),
    total: z.number().int().nonnegative(),
    /** Which demo run wrote it: the groups are long-lived, so events of earlier runs are skipped. */
    run: z.string(),
  }),
  description: 'A customer placed an order; billing invoices it, shipping ships it',
});

export const catalog = defineCatalog({ title: 'eventbus demo', version: '1.0.0', contracts: [orderPlaced] });
