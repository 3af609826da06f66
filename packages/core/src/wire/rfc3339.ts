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
