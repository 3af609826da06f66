import { describe, expect, it, vi } from 'vitest';
import { describeThrown, errorMessage, EventBusError, isEventBusError } from './errors.js';
import { guardedLogger } from './logger.js';

describe('describeThrown and errorMessage: any thrown value as text, never throwing', () => {
  it('describes an Error by its name, message, stack and code', () => {
    const error = Object.assign(new TypeError('bad'), { code: 'E_BAD' });
    expect(describeThrown(error)).toEqual({ name: 'TypeError', message: 'bad', stack: error.stack, code: 'E_BAD' });
    expect(describeThrown(new EventBusError('HANDLER_TIMEOUT', 'slow'))).toMatchObject({ name: 'EventBusError', message: 'slow', code: 'HANDLER_TIMEOUT' });
    expect(errorMessage(error)).toBe('bad');
  });

  it('describes values String() throws on: a null prototype, a toString that throws or returns an object', () => {
    const nullPrototype = Object.assign(Object.create(null), { code: 'E_DOWNSTREAM' });
    expect(() => String(nullPrototype)).toThrow(TypeError);
    expect(describeThrown(nullPrototype)).toEqual({ name: 'object', message: "[Object: null prototype] { code: 'E_DOWNSTREAM' }" });
    expect(errorMessage(nullPrototype)).toBe("[Object: null prototype] { code: 'E_DOWNSTREAM' }");
    const throwing = {
      toString(): string {
        throw new Error('no');
      },
    };
    expect(errorMessage(throwing)).toBe('{ toString: [Function: toString] }');
    expect(errorMessage({ toString: () => ({}) })).toBe('{ toString: [Function: toString] }');
  });

  it('describes an Error whose name, message or stack is not text, or whose getters throw', () => {
    const odd = Object.assign(new Error('unused'), { name: 42, message: Object.create(null), stack: { frames: [] } });
    expect(describeThrown(odd)).toEqual({ name: 'Error', message: '[Object: null prototype] {}' });
    const getters = new Error('unused');
    for (const property of ['name', 'message', 'stack']) {
      Object.defineProperty(getters, property, {
        get() {
          throw new Error(`${property} getter`);
        },
      });
    }
    expect(describeThrown(getters)).toEqual({ name: 'Error', message: '' });
    expect(errorMessage(Object.assign(new Error('x'), { message: 7 }))).toBe('7');
  });

  it('describes primitives and a Proxy whose traps throw', () => {
    expect(describeThrown('text')).toEqual({ name: 'string', message: 'text' });
    expect(describeThrown(undefined)).toEqual({ name: 'undefined', message: 'undefined' });
    expect(describeThrown(Symbol('s'))).toEqual({ name: 'symbol', message: 'Symbol(s)' });
    const trap = () => {
      throw new Error('trap');
    };
    const proxy = new Proxy({}, { get: trap, getPrototypeOf: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, has: trap });
    expect(typeof describeThrown(proxy).message).toBe('string');
    expect(isEventBusError(proxy)).toBe(false);
  });
});

describe('guardedLogger', () => {
  it('drops the lines the logger throws on and reports the first failure once as a process warning', () => {
    const lines: string[] = [];
    const logger = guardedLogger({
      debug: (_fields, message) => void lines.push(message),
      info: () => {
        throw Object.create(null);
      },
      warn: () => {
        throw new Error('transport closed');
      },
      error: () => undefined,
    });
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      logger.info({}, 'one');
      logger.warn({}, 'two');
      logger.debug({ a: 1 }, 'three');
      expect(lines).toEqual(['three']);
      expect(warning).toHaveBeenCalledTimes(1);
      expect(warning.mock.calls[0]![0]).toContain('[Object: null prototype] {}');
    } finally {
      warning.mockRestore();
    }
  });
});
