/**
 * Parsing of the connection settings every deployable reads from its environment (the
 * relay app, the CLI): one place, so both accept and refuse exactly the same values.
 * Each function returns the parsed value plus problems phrased for an operator
 * ("NAME … is invalid: expected …"), so callers can collect every problem before failing.
 */

/** Why `url` is not a usable Postgres connection string, or undefined. */
export function databaseUrlProblem(name: string, url: string): string | undefined {
  if (!/^postgres(ql)?:\/\/[^/]+/.test(url)) return `${name} is invalid: expected postgres://user:pass@host:port/database`;
  return undefined;
}

/** A comma-separated `host:port` list. */
export function parseBrokerList(name: string, text: string): { brokers: string[]; problems: string[] } {
  const brokers = text.split(',').map((b) => b.trim()).filter(Boolean);
  const problems = brokers
    .filter((broker) => !/^[^\s:/]+:\d{1,5}$/.test(broker))
    .map((broker) => `${name} entry ${JSON.stringify(broker)} is invalid: expected host:port`);
  return { brokers, problems };
}

/** A JSON object of event-type pattern → topic (`{"media.*":"eventbus.media-large"}`); empty text = none. */
export function parseTopicRoutes(name: string, text: string): { routes: Record<string, string> | undefined; problems: string[] } {
  if (text.trim() === '') return { routes: undefined, problems: [] };
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
      throw new Error('not an object of strings');
    }
    return { routes: parsed as Record<string, string>, problems: [] };
  } catch {
    return { routes: undefined, problems: [`${name} is invalid: expected a JSON object like {"media.*":"eventbus.media-large"}`] };
  }
}
