import type { StandardSchemaV1 } from '@standard-schema/spec';
import { errorMessage, EventBusError, NonRetriableError } from '@eventbus/core';
import type { ContractPayload, EventContract } from './define-event.js';

/** An issue of a schema, as Standard Schema reports it. */
export type PayloadIssue = StandardSchemaV1.Issue;

/**
 * A payload that does not match its contract's schema (code INVALID_PAYLOAD). `issues` are
 * the schema's own; the message lists them with their paths.
 */
export class PayloadValidationError extends EventBusError {
  override readonly name = 'PayloadValidationError';
  readonly issues: readonly PayloadIssue[];
  readonly eventType: string;
  readonly version: number;

  /** `position`: the event's index in a batch write, named in the message as `events[i]`. */
  constructor(contract: EventContract, issues: readonly PayloadIssue[], position?: number) {
    const where = position === undefined ? '' : `events[${position}].`;
    super('INVALID_PAYLOAD', `${where}payload of ${contract.type} v${contract.version} does not match its schema: ${formatIssues(issues)}`, {
      details: { eventType: contract.type, version: contract.version, issues: issues.map(plainIssue), ...(position === undefined ? {} : { position }) },
    });
    this.issues = issues;
    this.eventType = contract.type;
    this.version = contract.version;
  }
}

/** Runs the contract's schema (sync or async); returns the schema's output or throws PayloadValidationError (`position`: as its constructor's). */
export async function validatePayload<C extends EventContract>(contract: C, payload: unknown, position?: number): Promise<ContractPayload<C>> {
  let result = contract.schema['~standard'].validate(payload);
  if (result instanceof Promise) result = await result;
  if (result.issues) throw new PayloadValidationError(contract, result.issues, position);
  return result.value as ContractPayload<C>;
}

/**
 * Brings a payload written at `fromVersion` to the contract's version, one upcast step at a
 * time (1→2→3). Throws a NonRetriableError when no step exists or the event is newer than the
 * contract: handling it later cannot help, deploying the new contract (then a re-drive) does.
 */
export function upcastPayload(contract: EventContract, payload: unknown, fromVersion: number): unknown {
  if (fromVersion > contract.version) {
    throw new NonRetriableError(
      `${contract.type} v${fromVersion} is newer than this consumer's contract (v${contract.version}); deploy the v${fromVersion} contract, then re-drive the dead letter`,
      { details: { eventType: contract.type, version: fromVersion, contractVersion: contract.version } },
    );
  }
  let value = payload;
  for (let v = fromVersion; v < contract.version; v++) {
    const step = contract.upcast[v];
    if (!step) {
      throw new NonRetriableError(`${contract.type} v${fromVersion} cannot be upcast to v${contract.version}: the contract has no upcast from v${v}`, {
        details: { eventType: contract.type, version: fromVersion, contractVersion: contract.version, missingStep: v },
      });
    }
    try {
      value = step(value);
    } catch (error) {
      // An upcast is a pure function of the payload: what throws once throws on every retry.
      throw new NonRetriableError(`${contract.type} v${fromVersion}: the upcast from v${v} threw: ${errorMessage(error)}`, {
        cause: error,
        details: { eventType: contract.type, version: fromVersion, contractVersion: contract.version, failedStep: v },
      });
    }
  }
  return value;
}

/**
 * The consumer's side: upcasts an event's payload to the contract's version and validates it.
 * A payload that fails is a NonRetriableError (dead-lettered at once) whose message lists the issues.
 */
export async function decodeContractPayload<C extends EventContract>(contract: C, payload: unknown, version: number): Promise<ContractPayload<C>> {
  const current = upcastPayload(contract, payload, version);
  try {
    return await validatePayload(contract, current);
  } catch (error) {
    if (!(error instanceof PayloadValidationError)) throw error;
    const upcast = version === contract.version ? '' : ` (upcast from v${version})`;
    throw new NonRetriableError(`${error.message}${upcast}`, { cause: error, details: error.details });
  }
}

/** `total: Expected number, received string; items[0].sku: Required`: the issues on one line. */
export function formatIssues(issues: readonly PayloadIssue[]): string {
  return issues.map((issue) => (issue.path?.length ? `${issuePath(issue)}: ${issue.message}` : issue.message)).join('; ');
}

function issuePath(issue: PayloadIssue): string {
  let out = '';
  for (const segment of issue.path ?? []) {
    const key = typeof segment === 'object' ? segment.key : segment;
    out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** An issue as plain JSON (paths as keys only), for error details and logs. */
function plainIssue(issue: PayloadIssue): { message: string; path?: PropertyKey[] } {
  return issue.path ? { message: issue.message, path: issue.path.map((s) => (typeof s === 'object' ? s.key : s)) } : { message: issue.message };
}
