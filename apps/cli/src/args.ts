import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError } from './cli-error.js';
import { errorMessage } from '@eventbus/core';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every command takes. */
export const COMMON_FLAGS = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
} as const;

/**
 * node:util parseArgs in strict mode; its errors (unknown flag, missing value) become
 * usage errors (exit 2) that name the command's --help.
 */
export function parseCommandArgs<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: attachDashValues(argv, options), options, strict: true, allowPositionals });
  } catch (error) {
    // "argument is ambiguous": a flag followed by another flag, i.e. a forgotten value.
    const ambiguous = /^Option '(--[^']+)' argument is ambiguous/.exec(errorMessage(error));
    const message = ambiguous ? `${ambiguous[1]} needs a value` : errorMessage(error).split('\n')[0];
    throw usageError(`${message} (see: eventbus ${command} --help)`);
  }
}

/**
 * `--rate -5` as `--rate=-5`: parseArgs refuses a value that starts with a dash as
 * "ambiguous", which says nothing about the value; attached, the flag's own check reports
 * what is wrong with it ("expected events per second"). Only numbers are attached, so a
 * forgotten value before the next flag (`--limit --json`) is still "argument missing".
 */
function attachDashValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** A comma-separated flag value as a list, blanks dropped. */
export function listFlag(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/** An ISO 8601 date or date-time; a date without a zone is UTC. Anything else is a usage error. */
export function dateFlag(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = ISO_DATE.test(value) ? new Date(/[T ]\d{2}:\d{2}/.test(value) && !/(Z|[+-]\d{2}(:?\d{2})?)$/.test(value) ? `${value}Z` : value) : new Date(NaN);
  if (Number.isNaN(date.getTime()))
    throw usageError(`--${name} ${JSON.stringify(value.slice(0, 80))} is not a date: expected ISO 8601, like 2026-01-31 or 2026-01-31T12:00:00Z`);
  return date;
}

/** A positive integer flag within bounds. */
export function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw usageError(`--${name} ${JSON.stringify(value.slice(0, 80))} is invalid: expected an integer from ${min} to ${max}`);
  return n;
}

/** A positive number flag (rates may be fractional: 0.5/s). */
export function positiveNumberFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.replace(/\/s$/, ''));
  if (!/^\d+(\.\d+)?(\/s)?$/.test(value) || !(n > 0))
    throw usageError(`--${name} ${JSON.stringify(value.slice(0, 80))} is invalid: expected events per second, like 500`);
  return n;
}

/**
 * Durations like 90s, 15m, 1h, 7d, at most `maxSeconds` (default 366 days: a stats window;
 * retention ages pass a longer one).
 */
export function durationFlag(name: string, value: string | undefined, fallbackSeconds: number, maxSeconds = 366 * 86_400): number {
  if (value === undefined) return fallbackSeconds;
  const match = /^(\d+)(s|m|h|d)$/.exec(value);
  const seconds = match ? Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd'] : 0;
  if (!(seconds > 0))
    throw usageError(`--${name} ${JSON.stringify(value.slice(0, 80))} is invalid: expected a duration like 15m, 1h or 7d (a whole number of s, m, h or d)`);
  if (seconds > maxSeconds) throw usageError(`--${name} ${JSON.stringify(value.slice(0, 80))} is too long: at most ${Math.floor(maxSeconds / 86_400)}d`);
  return seconds;
}
