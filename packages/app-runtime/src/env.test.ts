import { describe, expect, it } from 'vitest';
import { ConfigError, EnvReader, SERVICE_ENV } from './env.js';

const TABLE = {
  ...SERVICE_ENV,
  BATCH: { default: '10', description: 'rows per batch' },
  RATIO: { default: '2', description: 'growth' },
  MIGRATE: { default: 'true', description: 'migrate at boot' },
  GROUPS: { default: '', description: 'groups' },
} as const;

describe('EnvReader', () => {
  it('applies defaults and parses values', () => {
    const env = new EnvReader(TABLE, {
      DATABASE_URL: ' postgres://u:p@db:5432/x ',
      KAFKA_BROKERS: 'a:9092, b:9093',
      GROUPS: 'x, ,y',
      MIGRATE: '0',
      RATIO: '1.5',
    });
    const config = env.finish({
      url: env.postgresUrl('DATABASE_URL'),
      brokers: env.brokers('KAFKA_BROKERS'),
      batch: env.int('BATCH', 1, 100),
      ratio: env.number('RATIO', 1, 10),
      migrate: env.bool('MIGRATE'),
      groups: env.list('GROUPS'),
      host: env.raw('HTTP_HOST'),
    });
    expect(config).toEqual({
      url: 'postgres://u:p@db:5432/x',
      brokers: ['a:9092', 'b:9093'],
      batch: 10,
      ratio: 1.5,
      migrate: false,
      groups: ['x', 'y'],
      host: '0.0.0.0',
    });
  });

  it('collects every problem, naming the variable and what it expects, without echoing the URL', () => {
    const env = new EnvReader(TABLE, {
      DATABASE_URL: 'mysql://root:hunter2@db',
      KAFKA_BROKERS: '',
      BATCH: '1e3',
      RATIO: 'x',
      MIGRATE: 'yes',
      LOG_LEVEL: 'LOUD',
    });
    env.postgresUrl('DATABASE_URL');
    env.brokers('KAFKA_BROKERS');
    env.int('BATCH', 1, 100);
    env.number('RATIO', 1, 10);
    env.bool('MIGRATE');
    env.oneOf('LOG_LEVEL', ['info', 'debug']);
    let error: unknown;
    try {
      env.finish({});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'DATABASE_URL is invalid: expected postgres://user:pass@host:port/database',
      'KAFKA_BROKERS is missing: expected comma-separated host:port list',
      'BATCH="1e3" is invalid: expected an integer from 1 to 100',
      'RATIO="x" is invalid: expected a number from 1 to 10',
      'MIGRATE="yes" is invalid: expected true or false',
      'LOG_LEVEL="loud" is invalid: expected one of info, debug',
    ]);
    expect((error as Error).message).not.toContain('hunter2');
  });
});
