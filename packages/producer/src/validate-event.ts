import { EventBusError, eventTypeProblem, type EventBusErrorCode, type StoredEvent } from '@eventbus/core';
import type { EventInput } from './types.js';

/** Limits a producer enforces before any SQL runs. */
export interface ValidationLimits {
  /** Serialized payload size limit. Default 256 KiB: well under Kafka's 1 MiB message limit, with room for headers. */
  maxPayloadBytes: number;
}

export const DEFAULT_VALIDATION_LIMITS: ValidationLimits = { maxPayloadBytes: 256 * 1024 };

const MAX_LENGTH = { tenantId: 128, projectId: 128, eventKey: 512, correlationId: 256, causationId: 256 } as const;
const MAX_VERSION = 32_767;

/**
 * An input that passed validation, with its payload already serialized once: a StoredEvent
 * before the write, so without the id and time the insert gives it, and with the correlation
 * id still null where the writer applies its default.
 */
export type ValidatedEvent = Omit<StoredEvent, 'id' | 'createdAt' | 'traceparent' | 'tracestate' | 'correlationId'> & { correlationId: string | null };

/**
 * Checks one input and serializes its payload; throws an EventBusError whose message says
 * what to fix. Runs before any SQL, so a bad input never touches the caller's transaction.
 */
export function validateEvent(input: EventInput, limits: ValidationLimits, position?: number): ValidatedEvent {
  const where = position === undefined ? '' : `events[${position}].`;
  const fail = (code: EventBusErrorCode, field: string, problem: string): never => {
    throw new EventBusError(code, `${where}${field} ${problem}`, { details: { field, position } });
  };
  if (input === null || typeof input !== 'object') fail('INVALID_EVENT', 'input', 'must be an object with eventKey, tenantId, eventType and payload');

  const text = (field: keyof typeof MAX_LENGTH | 'eventType', required: boolean): string | null => {
    const value = (input as unknown as Record<string, unknown>)[field];
    if (value === undefined || value === null) {
      if (required) fail('INVALID_EVENT', field, 'is required (a non-empty string)');
      return null;
    }
    if (typeof value !== 'string') return fail('INVALID_EVENT', field, `must be a string, got ${typeof value}`);
    if (value.trim() === '') fail('INVALID_EVENT', field, 'must not be empty or blank');
    if (value.includes('\u0000')) fail('INVALID_EVENT', field, 'must not contain NUL (\\u0000) characters');
    const max = field === 'eventType' ? 200 : MAX_LENGTH[field];
    if (value.length > max) fail('INVALID_EVENT', field, `must be at most ${max} characters, got ${value.length}`);
    return value;
  };

  const tenantId = text('tenantId', true)!;
  const eventKey = text('eventKey', true)!;
  const eventType = text('eventType', true)!;
  const typeProblem = eventTypeProblem(eventType);
  if (typeProblem) {
    fail(
      'INVALID_EVENT_TYPE',
      'eventType',
      `${JSON.stringify(eventType)} ${typeProblem} (convention: {resource}.{action}, {service}.{resource}.{action} or {domain}.{event})`,
    );
  }
  const projectId = text('projectId', false);
  const correlationId = text('correlationId', false);
  const causationId = text('causationId', false);

  const version = input.version ?? 1;
  if (!Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
    fail('INVALID_EVENT', 'version', `must be an integer from 1 to ${MAX_VERSION}, got ${String(version)}`);
  }

  if (!('payload' in input) || input.payload === undefined) fail('INVALID_PAYLOAD', 'payload', 'is required (any JSON value; use null or {} for none)');
  const problem = jsonProblem(input.payload, 'payload', new Set());
  if (problem) fail('INVALID_PAYLOAD', problem.path, problem.message);
  const payloadJson = JSON.stringify(input.payload);
  const bytes = Buffer.byteLength(payloadJson, 'utf8');
  if (bytes > limits.maxPayloadBytes) {
    fail(
      'PAYLOAD_TOO_LARGE',
      'payload',
      `is ${bytes} bytes serialized, over the limit of ${limits.maxPayloadBytes}; store a reference (an id or URL) instead of the data`,
    );
  }
  return { tenantId, projectId, eventKey, eventType, version, payloadJson, correlationId, causationId };
}

/**
 * Finds the first value JSON.stringify would drop, change or choke on. Silently dropped
 * values (undefined, functions) would publish a payload that differs from what the caller
 * wrote; NUL characters are refused by Postgres' jsonb.
 */
function jsonProblem(value: unknown, path: string, ancestors: Set<object>): { path: string; message: string } | undefined {
  switch (typeof value) {
    case 'string':
      return value.includes('\u0000') ? { path, message: 'contains a NUL (\\u0000) character, which Postgres jsonb cannot store' } : undefined;
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : { path, message: `is ${value}, which JSON cannot represent` };
    case 'bigint':
      return { path, message: 'is a BigInt, which JSON cannot represent; send it as a string' };
    case 'undefined':
      return { path, message: 'is undefined, which JSON drops; omit the key or use null' };
    case 'function':
    case 'symbol':
      return { path, message: `is a ${typeof value}, which is not JSON` };
  }
  if (value === null) return undefined;
  const object = value as object;
  if (object instanceof Date) {
    return Number.isNaN(object.getTime()) ? { path, message: 'is an invalid Date' } : undefined;
  }
  if (ancestors.has(object)) return { path, message: 'refers back to one of its parents (a cycle), which JSON cannot represent' };
  ancestors.add(object);
  try {
    if (Array.isArray(object)) {
      for (let i = 0; i < object.length; i++) {
        const found = jsonProblem(object[i], `${path}[${i}]`, ancestors);
        if (found) return found;
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      return {
        path,
        message: `is a ${object.constructor?.name ?? 'non-plain'} object, which JSON would not keep as is; convert it to a plain object or array`,
      };
    }
    for (const [key, child] of Object.entries(object)) {
      if (key.includes('\u0000')) return { path: `${path}.${key}`, message: 'has a key with a NUL (\\u0000) character' };
      const found = jsonProblem(child, `${path}.${key}`, ancestors);
      if (found) return found;
    }
    return undefined;
  } finally {
    ancestors.delete(object);
  }
}
