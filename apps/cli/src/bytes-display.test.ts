import { describe, expect, it } from 'vitest';
import { displayBytes, jsonBytes } from './bytes-display.js';

describe('bytes shown by dlq show', () => {
  it('shows UTF-8 as text and escapes control characters, backslashes and bytes that are not UTF-8', () => {
    expect(displayBytes(Buffer.from('tenant-ä'))).toBe('tenant-ä');
    expect(displayBytes(Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x41]))).toBe('\\x00\\xff\\xfe\\x00A');
    expect(displayBytes(Buffer.from('a\u0000b\\x00'))).toBe('a\\x00b\\\\x00');
    expect(displayBytes(Buffer.from([0x5c, 0xff]))).toBe('\\\\\\xff');
    expect(displayBytes(Buffer.from('a\nb'))).toBe('a\\x0ab');
    expect(displayBytes(Buffer.from('a\nb'), { keepNewlines: true })).toBe('a\nb');
  });

  it('gives --json an encoding that says which it is and round-trips', () => {
    const binary = Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x41]);
    expect(jsonBytes(binary)).toEqual({ base64: 'AP/+AEE=' });
    expect(jsonBytes(Buffer.from('a\u0000b'))).toEqual({ utf8: 'a\u0000b' });
    expect(jsonBytes(null)).toBeNull();
    expect(Buffer.from((jsonBytes(binary) as { base64: string }).base64, 'base64').equals(binary)).toBe(true);
  });
});
