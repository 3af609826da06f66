export {
  defineEvent,
  isEventContract,
  type ContractInput,
  type ContractPayload,
  type EventContract,
  type EventContractDefinition,
  type Upcast,
} from './define-event.js';
export { defineCatalog, isEventCatalog, type EventCatalog, type EventCatalogDefinition } from './catalog.js';
export { validatePayload, upcastPayload, decodeContractPayload, formatIssues, PayloadValidationError, type PayloadIssue } from './validate.js';
export { asyncApiDocument, payloadJsonSchema, type AsyncApiOptions } from './asyncapi.js';
export type { StandardSchemaV1 } from '@standard-schema/spec';
