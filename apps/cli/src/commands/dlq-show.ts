import { isUtf8 } from 'node:buffer';
import type { DroppedPart } from '@eventbus/core';
import { COMMON_FLAGS, parseCommandArgs } from '../args.js';
import { displayBytes, jsonBytes } from '../bytes-display.js';
import { badData, usageError } from '../cli-error.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine } from '../io.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';

export const DEAD_LETTER_ID = /^[1-9]\d{0,18}$/;

export const dlqShowCommand: Command = {
  path: ['dlq', 'show'],
  summary: 'show one dead letter: payload, headers, error, stack, attempts',
  help: `Usage: eventbus dlq show <id> [--json]

Shows everything stored about one dead letter: where it failed (stage, group, original
topic/partition/offset), the key, payload and headers as received, the error with its
stack, the attempts and the first and last failure.

Key, value and headers are kept byte for byte. Shown as text when they are valid UTF-8;
otherwise (and for control characters such as NUL) bytes are escaped as \\xNN and a
backslash as \\\\, with "(not UTF-8)" after the value. With --json, "bytes" holds them
unambiguously: {"utf8": "..."} for valid UTF-8, else {"base64": "..."}; headers as a list of
{name, value} in record order. Rows mirrored before migration 0004 have "bytes": null and
only the readable copies (messageKey, value, headers), where such bytes show as U+FFFD.

Example:
  eventbus dlq show 42

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('dlq show', argv, { ...COMMON_FLAGS, ...CONNECTION_FLAGS }, true);
    if (positionals.length !== 1) throw usageError('dlq show takes exactly one id (see: eventbus dlq show --help)');
    const id = positionals[0]!;
    if (!DEAD_LETTER_ID.test(id)) throw usageError(`${JSON.stringify(id.slice(0, 80))} is not a dead letter id (a positive integer)`);
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { openDatabase } = await import('../connections.js');
    const { showDeadLetter } = await import('@eventbus/dead-letters');
    const { HEADER } = await import('@eventbus/core');
    const db = await openDatabase(new ConnectionSettings(values, io.env));
    try {
      const row = await showDeadLetter(db, id);
      if (!row) throw badData(`dead letter ${id} does not exist`);
      const { bytes } = row;
      const payload = row.stage === 'relay' ? row.eventLogPayload : bytes ? parseBytes(bytes.value) : parseOrText(row.value);
      if (values.json) {
        const encoded = bytes && {
          key: jsonBytes(bytes.key),
          value: jsonBytes(bytes.value),
          headers: bytes.headers.map((h) => ({ name: h.name.toString('utf8'), value: jsonBytes(h.value) })),
        };
        printJson(io, { ...row, bytes: encoded, payload: payload instanceof Buffer ? jsonBytes(payload) : payload });
        return EXIT.ok;
      }
      const lines: Array<[string, unknown]> = [
        ['id', row.id],
        ['status', `${row.status}${row.statusChangedAt ? ` (since ${row.statusChangedAt.toISOString()})` : ''}`],
        ['stage', row.stage],
        ['group', row.groupId],
        ['tenant', row.tenantId ?? notStored(row.dropped, HEADER.tenantId)],
        ['event', `${row.eventId ?? '-'} ${row.eventType ?? ''} (key ${row.eventKey ?? '-'})`],
        ['origin', row.topic ? `${row.topic} partition ${row.partition} offset ${row.offset}` : null],
        ['key', (bytes ? bytes.key && shown(bytes.key) : row.messageKey) ?? notStored(row.dropped, 'key')],
        ['attempts', row.attempts],
        ['first failed', row.firstFailedAt.toISOString()],
        ['last failed', row.lastFailedAt.toISOString()],
        ['error', `${row.errorClass}: ${row.errorMessage}`],
      ];
      for (const [name, value] of lines) printLine(io, `${`${name}:`.padEnd(14)}${value ?? '-'}`);
      printLine(io, '\npayload:');
      if (row.refusedCopyBytes !== null) {
        printLine(
          io,
          indent(
            `(not stored: the DLQ copy, ${row.refusedCopyBytes} bytes, was larger than the DLQ topic accepts; the event is on ${row.topic} partition ${row.partition} offset ${row.offset}, where dlq retry reads it while Kafka keeps it, and in the EventLog)`,
          ),
        );
      } else printLine(io, indent(payload instanceof Buffer ? shown(payload, true) : typeof payload === 'string' ? payload : JSON.stringify(payload, null, 2)));
      printLine(io, '\nheaders:');
      const headers: Array<[string, string]> = bytes
        ? bytes.headers.map((h) => [displayBytes(h.name), h.value === null ? '(null)' : shown(h.value)])
        : Object.entries(row.headers);
      for (const [name, value] of headers.sort(([a], [b]) => a.localeCompare(b))) {
        if (name !== 'eventbus-dlq-error-stack') printLine(io, `  ${name}: ${value}`);
      }
      printLine(io, '\nstack:');
      printLine(io, indent(row.errorStack ?? '(none)'));
      return EXIT.ok;
    } finally {
      await db.end();
    }
  },
};

/** What a coordinates-only DLQ record left out in place of `part` (`key` or a header name), or undefined when it did not. */
function notStored(dropped: readonly DroppedPart[], part: string): string | undefined {
  const bytes = dropped.find((d) => d.name === part)?.bytes;
  return bytes === undefined ? undefined : `(not stored: ${bytes} bytes, larger than the DLQ topic accepts; the original holds it)`;
}

function parseOrText(value: string | null): unknown {
  if (value === null) return null;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** The value as JSON when it parses, as text when it is UTF-8, else the bytes (shown escaped). */
function parseBytes(value: Buffer | null): unknown {
  if (value === null) return null;
  return isUtf8(value) ? parseOrText(value.toString('utf8')) : value;
}

/** Bytes as `displayBytes` shows them, marked when they are not UTF-8. */
function shown(bytes: Buffer, keepNewlines = false): string {
  return `${displayBytes(bytes, { keepNewlines })}${isUtf8(bytes) ? '' : ' (not UTF-8)'}`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
