import { isUtf8 } from 'node:buffer';

/**
 * Bytes in `--json` output, never ambiguous: `{ "utf8": text }` when the bytes are valid UTF-8
 * (NUL included: JSON escapes it as \u0000), otherwise `{ "base64": … }`. A plain string
 * could not tell `\xff` from the text "\xff".
 */
export type JsonBytes = { utf8: string } | { base64: string };

export function jsonBytes(bytes: Buffer | null): JsonBytes | null {
  if (bytes === null) return null;
  return isUtf8(bytes) ? { utf8: bytes.toString('utf8') } : { base64: bytes.toString('base64') };
}

/**
 * Bytes for a person to read on one line: valid UTF-8 as text, everything else escaped as
 * `\xNN` (control characters, NUL, bytes that are not UTF-8), a backslash as `\\`. So
 * `00 ff fe 00 41` shows as `\x00\xff\xfe\x00A` and the escaping itself is unambiguous.
 */
export function displayBytes(bytes: Buffer, options: { keepNewlines?: boolean } = {}): string {
  const keep = (c: string) => options.keepNewlines === true && (c === '\n' || c === '\t');
  if (isUtf8(bytes)) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters to escape them is the point
    return bytes.toString('utf8').replace(/[\\\u0000-\u001f\u007f]/g, (c) => (c === '\\' ? '\\\\' : keep(c) ? c : hexEscape(c.charCodeAt(0))));
  }
  let out = '';
  for (const byte of bytes) out += byte === 0x5c ? '\\\\' : byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : hexEscape(byte);
  return out;
}

function hexEscape(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}
