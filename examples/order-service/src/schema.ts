import { integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/** Orders, written by the HTTP endpoint together with their `order.placed` event. */
export const orders = pgTable('orders', {
  id: uuid('id').primaryKey().defaultRandom(),
  tenantId: text('tenant_id').notNull(),
  totalCents: integer('total_cents').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Invoices, the billing worker's side effect: one per order, written once per event. */
export const invoices = pgTable('invoices', {
  orderId: uuid('order_id').primaryKey(),
  tenantId: text('tenant_id').notNull(),
  totalCents: integer('total_cents').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});
