import { describe, expect, it } from 'vitest';
import { databaseUrlProblem, parseBrokerList, parseKafkaSecurity, redactUrl } from './connection-settings.js';

describe('databaseUrlProblem', () => {
  it.each(['postgres://eventbus:pw@db:5432/app', 'postgresql://db/app', 'postgres://eventbus:p%40ss@db:5432/app?sslmode=require'])('accepts %s', (url) => {
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

describe('parseKafkaSecurity', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const read = (path: string) => {
    if (path === '/ca.pem') return pem;
    throw new Error(`ENOENT: no such file or directory, open '${path}'`);
  };

  it('is plaintext (undefined) when nothing is set', () => {
    expect(parseKafkaSecurity({}, read)).toEqual({ security: undefined, problems: [] });
  });

  it('reads TLS with system CAs, TLS with a CA file, and SASL', () => {
    expect(parseKafkaSecurity({ KAFKA_SSL: 'true' }, read).security).toEqual({ ssl: true });
    expect(
      parseKafkaSecurity({ KAFKA_SSL_CA_FILE: '/ca.pem', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD: 'pw ' }, read)
        .security,
    ).toEqual({ ssl: { ca: [pem] }, sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'pw ' } });
  });

  it('names every problem and never the password', () => {
    const { problems } = parseKafkaSecurity(
      { KAFKA_SSL: 'yes', KAFKA_SSL_CA_FILE: '/missing.pem', KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: 'hunter2' },
      read,
    );
    expect(problems).toEqual([
      'KAFKA_SSL="yes" is invalid: expected true or false',
      `KAFKA_SSL_CA_FILE="/missing.pem" cannot be read: ENOENT: no such file or directory, open '/missing.pem'`,
      'KAFKA_SASL_USERNAME is missing: required with KAFKA_SASL_MECHANISM',
    ]);
    expect(parseKafkaSecurity({ KAFKA_SASL_USERNAME: 'svc', KAFKA_SASL_PASSWORD: 'hunter2' }, read).problems).toEqual([
      'KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are set without KAFKA_SASL_MECHANISM: set it to plain, scram-sha-256 or scram-sha-512',
    ]);
  });
});
