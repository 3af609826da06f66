import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';

/** The session cookie a login sets: HttpOnly (no script reads it), SameSite=Strict (no other site sends it). */
export const SESSION_COOKIE = 'eventbus_console_session';
/** The header every POST carries the page's anti-CSRF token in. */
export const CSRF_HEADER = 'x-csrf-token';

/** Equal strings in constant time (hashed first, so different lengths compare too). */
export function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The console's request checks, in order:
 * 1. On a loopback bind, the Host header must name the loopback (a DNS-rebinding page on
 *    another site would otherwise reach 127.0.0.1 with its own host name and read answers).
 * 2. With a token configured, every request needs it: `Authorization: Bearer <token>`, or the
 *    session cookie the login form sets. Only the login page, its POST and its stylesheet pass without.
 * 3. Every POST carries the per-process anti-CSRF token (embedded in the page) in X-CSRF-Token;
 *    another site's form or fetch cannot read the page, so it cannot know the token.
 */
export class ConsoleSecurity {
  /** Embedded in every page; checked on every POST. New on each start. */
  readonly csrfToken = randomToken();
  private readonly sessions = new Set<string>();

  constructor(
    private readonly token: string | undefined,
    private readonly loopback: boolean,
  ) {}

  get requiresToken(): boolean {
    return this.token !== undefined;
  }

  /** A session id for a correct token; undefined otherwise. */
  login(token: string): string | undefined {
    if (this.token === undefined || !sameSecret(token, this.token)) return undefined;
    const session = randomToken();
    this.sessions.add(session);
    return session;
  }

  middleware(): MiddlewareHandler {
    return async (c, next) => {
      if (this.loopback && !loopbackHostHeader(c.req.header('host'))) {
        return c.json({ error: 'this console answers only to localhost, 127.0.0.1 or [::1] in the Host header' }, 421);
      }
      const isLogin = c.req.path === '/login';
      // The login page and its stylesheet are all a visitor without the token can load.
      const open = isLogin || (c.req.method === 'GET' && c.req.path === '/static/style.css');
      if (this.requiresToken && !open && !this.authenticated(c)) {
        if (c.req.method === 'GET' && (c.req.header('accept') ?? '').includes('text/html')) return c.redirect('/login', 303);
        return c.json({ error: 'EVENTBUS_CONSOLE_TOKEN required: send Authorization: Bearer <token>, or log in at /login' }, 401);
      }
      if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
        const sent = c.req.header(CSRF_HEADER) ?? (isLogin ? await formField(c, 'csrf') : undefined);
        if (sent === undefined || !sameSecret(sent, this.csrfToken)) {
          return c.json({ error: 'missing or wrong anti-CSRF token: reload the page and try again' }, 403);
        }
      }
      await next();
    };
  }

  private authenticated(c: Context): boolean {
    const authorization = c.req.header('authorization') ?? '';
    const bearer = /^Bearer\s+(.+)$/i.exec(authorization)?.[1];
    if (bearer !== undefined && this.token !== undefined && sameSecret(bearer.trim(), this.token)) return true;
    const session = getCookie(c, SESSION_COOKIE);
    return session !== undefined && this.sessions.has(session);
  }
}

function loopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

async function formField(c: Context, name: string): Promise<string | undefined> {
  const type = c.req.header('content-type') ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) return undefined;
  const body = await c.req.parseBody();
  const value = body[name];
  return typeof value === 'string' ? value : undefined;
}

/** Any `scheme://user:password@` in a text, with the password replaced: error messages may quote a connection string. */
export function redactSecrets(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:@/\s]+):[^@/\s]*@/gi, '$1:***@');
}
