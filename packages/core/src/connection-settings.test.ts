import { describe, expect, it } from 'vitest';
import { databaseUrlProblem, parseBrokerList, redactUrl } from './connection-settings.js';

describe('databaseUrlProblem', () => {
  it.each([
    'postgres://eventbus:pw@db:5432/app',
    'postgresql://db/app',
    'postgres://eventbus:p%40ss@db:5432/app?sslmode=require',
  ])('accepts %s', (url) => {
    expect(databaseUrlProblem('DATABASE_URL', url)).toBeUndefined();
  });

  it.each([
    ['mysql://db/app', 'DATABASE_URL is invalid: expected postgres://user:pass@host:port/database'],
    ['postgres://eventbus:pw@db:abc/app', 'DATABASE_URL is invalid: postgres://eventbus:***@db:abc/app is not a URL (is the port a number?'],
    ['postgres://eventbus:p#w@db:5432/app', 'DATABASE_URL is invalid: postgres://eventbus:***@db:5432/app is not a URL'],
  ])('refuses %s, naming the variable and never the password', (url, message) => {
    const problem = databaseUrlProblem('DATABASE_URL', url);
    expect(problem).toContain(message);
    expect(problem).not.toMatch(/pw|p#w/);
  });
});

describe('redactUrl', () => {
  it('replaces the password, keeps the rest', () => {
    expect(redactUrl('postgres://eventbus:s3cret@db:5432/app')).toBe('postgres://eventbus:***@db:5432/app');
    expect(redactUrl('postgres://db:5432/app')).toBe('postgres://db:5432/app');
  });
});

describe('parseBrokerList', () => {
  it('names each bad entry', () => {
    expect(parseBrokerList('KAFKA_BROKERS', 'a:9092, b').problems).toEqual(['KAFKA_BROKERS entry "b" is invalid: expected host:port']);
  });
});
