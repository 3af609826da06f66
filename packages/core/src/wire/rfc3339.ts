/**
 * RFC 3339 `date-time` (section 5.6), as CloudEvents' `time` attribute requires it:
 * `T` or `t` (or, per the RFC's note, a space) between date and time; `Z`, `z` or a
 * `±hh:mm` offset; any number of fraction digits (Go and Java send 9); a leap second `:60`.
 */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * The instant of an RFC 3339 date-time, or undefined for anything else. `Date.parse` is no
 * check: it reads `"1"` as 2001-01-01 and refuses a leap second. A Date keeps milliseconds,
 * so finer fractions are truncated; a leap second `:60` reads as `:59.999`, the last
 * millisecond before the next minute (so the order of events stays as sent).
 */
export function parseRfc3339(text: string): Date | undefined {
  const canonical = parseIsoString(text);
  if (canonical !== undefined) return new Date(canonical);
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const fraction = m[7];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMinutes = 0;
  if (m[9] !== undefined) {
    const offsetHours = Number(m[10]);
    const offsetMins = Number(m[11]);
    if (offsetHours > 23 || offsetMins > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const leap = second === 60;
  const ms = leap ? 999 : fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'));
  // setUTCFullYear, unlike Date.UTC, keeps years 0-99 as they are.
  const local = new Date(0);
  local.setUTCFullYear(year, month - 1, day);
  local.setUTCHours(hour, minute, leap ? 59 : second, ms);
  const date = new Date(local.getTime() - offsetMinutes * 60_000);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * `toISOString()`'s form, `YYYY-MM-DDTHH:MM:SS.sssZ` (what the relay and most SDKs send), read
 * digit by digit: a consumer reads one per message, and the general path (a regular
 * expression and three Dates) cost more than the rest of decoding an event. Undefined for
 * anything else, which the general path then reads (or refuses).
 */
function parseIsoString(text: string): number | undefined {
  if (text.length !== 24) return undefined;
  for (let i = 0; i < 24; i++) {
    const c = text.charCodeAt(i);
    const expected = ISO_STRING_SHAPE.charCodeAt(i);
    if (expected === 48 /* 0: a digit */ ? c < 48 || c > 57 : c !== expected) return undefined;
  }
  const n = (at: number, digits: number) => {
    let value = 0;
    for (let i = at; i < at + digits; i++) value = value * 10 + text.charCodeAt(i) - 48;
    return value;
  };
  const year = n(0, 4);
  const month = n(5, 2);
  const day = n(8, 2);
  const hour = n(11, 2);
  const minute = n(14, 2);
  const second = n(17, 2);
  // Years below 100: Date.UTC would read them as 19xx; the general path keeps them.
  if (year < 100 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second, n(20, 3));
}

const ISO_STRING_SHAPE = '0000-00-00T00:00:00.000Z';
