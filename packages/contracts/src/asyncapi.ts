import type { StandardJSONSchemaV1 } from '@standard-schema/spec';
import { EventBusError, HEADER, TopicRouter, type TopicRoutingOptions } from '@eventbus/core';
import type { EventCatalog } from './catalog.js';
import type { EventContract } from './define-event.js';

/** Options of `asyncApiDocument`. */
export interface AsyncApiOptions {
  /** The relay's topic routing, so each channel is the topic the events are published to. Default `eventbus.{family}`. */
  routing?: TopicRoutingOptions;
}

type Json = Record<string, unknown>;

/** The payload schemas are JSON Schema draft-07, the version AsyncAPI's own schema format builds on. */
const SCHEMA_FORMAT = 'application/schema+json;version=draft-07';

/**
 * The catalog as an AsyncAPI 3.0 document: a channel per topic (the address is the Kafka
 * topic), a message per contract version with its payload's JSON Schema, the CloudEvents
 * headers and the key (the tenant id), and a `send` operation per channel. A pure function.
 */
export function asyncApiDocument(catalog: EventCatalog, options: AsyncApiOptions = {}): Json {
  const router = new TopicRouter(options.routing ?? {});
  const messages: Json = {};
  const channels: Record<string, { address: string; messages: Json }> = {};
  for (const contract of catalog.contracts) {
    const id = messageId(contract);
    messages[id] = message(contract);
    const topic = router.topicFor(contract.type);
    channels[topic] ??= { address: topic, messages: {} };
    channels[topic].messages[id] = { $ref: `#/components/messages/${id}` };
  }
  const operations: Json = {};
  for (const [topic, channel] of Object.entries(channels)) {
    operations[`send.${topic}`] = {
      action: 'send',
      summary: `The relay publishes the outbox's events to ${topic}`,
      channel: { $ref: `#/channels/${topic}` },
      messages: Object.keys(channel.messages).map((id) => ({ $ref: `#/channels/${topic}/messages/${id}` })),
    };
  }
  return {
    asyncapi: '3.0.0',
    info: { title: catalog.title, version: catalog.version, ...(catalog.description ? { description: catalog.description } : {}) },
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages },
  };
}

/** `order.placed.v2`: a component key AsyncAPI accepts (letters, digits, `.`, `_`, `-`). */
function messageId(contract: EventContract): string {
  return `${contract.type}.v${contract.version}`;
}

function message(contract: EventContract): Json {
  return {
    name: contract.type,
    title: `${contract.type} v${contract.version}`,
    ...(contract.description ? { summary: contract.description } : {}),
    contentType: 'application/json',
    headers: headersSchema(contract),
    payload: { schemaFormat: SCHEMA_FORMAT, schema: payloadJsonSchema(contract) },
    bindings: { kafka: { key: { type: 'string', description: 'The tenant id: a tenant’s events share a partition, in order' }, bindingVersion: '0.5.0' } },
  };
}

/** The CloudEvents Kafka binding's headers (binary mode), as packages/core/src/wire/message-format.ts writes them. */
function headersSchema(contract: EventContract): Json {
  const text = (description: string, extra: Json = {}) => ({ type: 'string', description, ...extra });
  return {
    type: 'object',
    properties: {
      [HEADER.specVersion]: text('CloudEvents spec version', { const: '1.0' }),
      [HEADER.id]: text('Event id (uuid), stable across retries and replays', { format: 'uuid' }),
      [HEADER.type]: text('Event type', { const: contract.type }),
      [HEADER.source]: text('/tenants/{tenantId}, the id percent-encoded'),
      [HEADER.time]: text('Created at, RFC 3339', { format: 'date-time' }),
      [HEADER.tenantId]: text('Tenant id (also the message key)'),
      [HEADER.projectId]: text('Project id, when set'),
      [HEADER.eventKey]: text("The producer's idempotency key"),
      [HEADER.version]: text('Payload schema version', { const: String(contract.version) }),
      [HEADER.correlationId]: text('Correlation id'),
      [HEADER.causationId]: text('Causation id, when set'),
      [HEADER.contentType]: text('Payload media type', { const: 'application/json' }),
      [HEADER.traceparent]: text("W3C trace context of the producer's span"),
      [HEADER.tracestate]: text('W3C trace state'),
      [HEADER.replayId]: text('Set only on replayed events'),
    },
    required: [HEADER.specVersion, HEADER.id, HEADER.type, HEADER.source, HEADER.time, HEADER.tenantId, HEADER.eventKey, HEADER.version, HEADER.correlationId],
  };
}

/**
 * The contract's explicit `jsonSchema`, else the schema's own (Standard JSON Schema:
 * `["~standard"].jsonSchema`, e.g. zod 4), else an error that says what to pass.
 */
export function payloadJsonSchema(contract: EventContract): Json {
  if (contract.jsonSchema) return contract.jsonSchema;
  const converter = (contract.schema['~standard'] as Partial<StandardJSONSchemaV1.Props>).jsonSchema;
  if (converter && typeof converter.input === 'function') {
    try {
      return converter.input({ target: 'draft-07' });
    } catch (error) {
      throw new EventBusError(
        'INVALID_CONFIG',
        `${contract.type} v${contract.version}: the schema could not produce a JSON Schema; pass jsonSchema to defineEvent`,
        {
          cause: error,
          details: { eventType: contract.type, version: contract.version },
        },
      );
    }
  }
  const vendor = contract.schema['~standard'].vendor;
  throw new EventBusError(
    'INVALID_CONFIG',
    `${contract.type} v${contract.version}: its ${vendor} schema has no JSON Schema converter (["~standard"].jsonSchema); pass jsonSchema to defineEvent (valibot: toJsonSchema of @valibot/to-json-schema)`,
    { details: { eventType: contract.type, version: contract.version } },
  );
}
