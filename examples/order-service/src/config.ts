/** The environment every process of the service reads (the same names the eventbus apps use). */
export function config() {
  const databaseUrl = process.env.DATABASE_URL;
  const brokers = process.env.KAFKA_BROKERS;
  if (!databaseUrl) throw new Error('DATABASE_URL is required, e.g. postgres://postgres@127.0.0.1:5432/orders');
  return {
    databaseUrl,
    brokers: brokers ? brokers.split(',') : [],
    topicPrefix: process.env.EVENTBUS_TOPIC_PREFIX || 'eventbus.',
    port: Number(process.env.PORT ?? 3000),
  };
}
