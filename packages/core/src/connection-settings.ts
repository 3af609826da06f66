/**
 * Parsing of the connection settings every deployable reads from its environment (the
 * relay app, the CLI): one place, so both accept and refuse exactly the same values.
 * Each function returns the parsed value plus problems phrased for an operator
 * ("NAME … is invalid: expected …"), so callers can collect every problem before failing.
 */

/** Why `url` is not a usable Postgres connection string, or undefined. */
export function databaseUrlProblem(name: string, url: string): string | undefined {
  if (!/^postgres(ql)?:\/\/[^/]+/.test(url)) return `${name} is invalid: expected postgres://user:pass@host:port/database`;
  // pg parses the URL with WHATWG URL rules: check it the same way here, so a bad port or an
  // unencoded character in the password is a config error naming the variable, not pg's bare "Invalid URL".
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${name} is invalid: ${redactUrl(url)} is not a URL (is the port a number? are characters like @ : / # in the password percent-encoded?)`;
  }
  if (parsed.hostname === '' && !parsed.searchParams.has('host')) return `${name} is invalid: ${redactUrl(url)} names no host`;
  return undefined;
}

/** The URL with its password replaced by ***, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/**
 * How long a connection made at start may take (TCP, TLS and authentication) before it
 * counts as "cannot connect": a server that accepts the connection and never answers would
 * otherwise hold a process at start forever, silently.
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

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
