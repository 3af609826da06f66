// The wire protocol: every byte layout this project puts on Kafka, owned here and nowhere
// else. The event itself (CloudEvents Kafka binding, binary mode; structured mode read),
// the headers a consumer group adds to its retry and DLQ copies, the original message's
// coordinates they carry, and the names of the per-group retry and DLQ topics. Producers
// (relay, replay, re-drive) and consumers (EventConsumer, DLQ mirror) both read it from here.
export * from './message-format.js';
export * from './rfc3339.js';
export * from './message-origin.js';
export * from './header-bytes.js';
export * from './retry-headers.js';
export * from './dlq-headers.js';
export * from './topic-names.js';
