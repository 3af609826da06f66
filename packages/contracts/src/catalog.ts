import { invalidConfig } from '@eventbus/core';
import { type EventContract, isEventContract } from './define-event.js';

/** A service's event contracts, for the AsyncAPI document (`eventbus catalog --asyncapi`). */
export interface EventCatalog {
  readonly kind: 'eventbus.event-catalog';
  /** The document's title. */
  readonly title: string;
  /** The catalog's own version (the AsyncAPI `info.version`), not an event's. */
  readonly version: string;
  readonly description: string | undefined;
  /** Every contract, by type then version. Older versions of a type may be listed beside the current one. */
  readonly contracts: readonly EventContract[];
}

/** Arguments of `defineCatalog`. */
export interface EventCatalogDefinition {
  /** Default `eventbus events`. */
  title?: string;
  /** Default `1.0.0`. */
  version?: string;
  description?: string;
  contracts: readonly EventContract[];
}

/** Groups contracts; each (type, version) once. */
export function defineCatalog(definition: EventCatalogDefinition): EventCatalog {
  if (typeof definition !== 'object' || definition === null || !Array.isArray(definition.contracts)) {
    throw invalidConfig('defineCatalog()', 'an object with contracts: an array of defineEvent() results', definition);
  }
  const seen = new Set<string>();
  for (const [i, contract] of definition.contracts.entries()) {
    if (!isEventContract(contract)) throw invalidConfig(`defineCatalog().contracts[${i}]`, 'a defineEvent() result', contract);
    const id = `${contract.type} v${contract.version}`;
    if (seen.has(id)) throw invalidConfig(`defineCatalog().contracts[${i}]`, 'each (type, version) once', id);
    seen.add(id);
  }
  const contracts = [...definition.contracts].sort((a, b) => (a.type === b.type ? a.version - b.version : a.type < b.type ? -1 : 1));
  return Object.freeze({
    kind: 'eventbus.event-catalog' as const,
    title: definition.title ?? 'eventbus events',
    version: definition.version ?? '1.0.0',
    description: definition.description,
    contracts: Object.freeze(contracts),
  });
}

/** True for a value made by `defineCatalog` (also by another copy of this package). */
export function isEventCatalog(value: unknown): value is EventCatalog {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'eventbus.event-catalog';
}
