import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { uuidv7 } from '@eventbus/core';
import { waitFor } from '@eventbus/dev-services';
import { consumerFixture } from './consumer-fixture.js';

const WORKER = fileURLToPath(new URL('./inbox-worker.mjs', import.meta.url));

let f: Awaited<ReturnType<typeof consumerFixture>>;
const children: ChildProcess[] = [];
beforeAll(async () => {
  f = await consumerFixture('consumer-crash');
  await f.pool.query('CREATE TABLE public.effects (event_id text NOT NULL)');
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await f?.close();
});

interface Step {
  step: string;
  id?: string;
  ran?: boolean;
  where?: string;
}

function startWorker(env: Record<string, string>) {
  const child = spawn(process.execPath, [WORKER], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const steps: Step[] = [];
  let buffer = '';
  child.stdout!.on('data', (d) => {
    buffer += d;
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) if (line.startsWith('{')) steps.push(JSON.parse(line));
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const waitForStep = (match: (s: Step) => boolean, message: string) =>
    waitFor(() => steps.find(match), { timeoutMs: 45_000, message: `${message} (worker stderr: ${stderr.slice(-500)})` });
  return { child, steps, exited, waitForStep };
}

const effectCount = async (eventId: string): Promise<number> =>
  (await f.pool.query('SELECT count(*)::int AS n FROM public.effects WHERE event_id = $1', [eventId])).rows[0].n;

describe('a consumer process killed mid-handler (real Kafka, real Postgres, separate processes)', () => {
  it('redelivers the event, and with the inbox its side effect happens exactly once, whether the kill lands before or after the inbox commit', async () => {
    const prefix = f.prefix();
    const env = { KAFKA_BROKERS: f.brokers.join(','), DATABASE_URL: f.database.url, TOPIC_PREFIX: prefix, GROUP_ID: f.group('payments') };

    // 1. Killed inside the inbox transaction: the effect was written but never committed.
    const before = uuidv7();
    await f.publish(prefix, [{ tenantId: 'acme', eventType: 'payment.captured', id: before }]);
    const first = startWorker({ ...env, STALL: 'before-commit' });
    await first.waitForStep((s) => s.step === 'stalled' && s.id === before, 'first worker stalls before its commit');
    first.child.kill('SIGKILL');
    await first.exited;
    // Postgres rolled the open transaction back when the connection died.
    await waitFor(
      async () =>
        (await f.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`)).rows[0]
          .n === 0,
      { message: 'the dead worker’s transaction is gone' },
    );
    expect(await effectCount(before)).toBe(0);
    const second = startWorker(env);
    const redelivered = await second.waitForStep((s) => s.step === 'handler-done' && s.id === before, 'the event is redelivered to the restarted worker');
    expect(redelivered.ran).toBe(true);
    expect(await effectCount(before)).toBe(1);
    second.child.kill('SIGTERM');
    await second.exited;

    // 2. Killed after the inbox transaction committed, before the handler returned: Kafka
    //    redelivers (the offset was never committed), the inbox skips the effect.
    const after = uuidv7();
    await f.publish(prefix, [{ tenantId: 'acme', eventType: 'payment.captured', id: after }]);
    const third = startWorker({ ...env, STALL: 'after-commit' });
    const stalled = await third.waitForStep((s) => s.step === 'stalled' && s.id === after, 'third worker stalls after its commit');
    expect(stalled.ran).toBe(true);
    third.child.kill('SIGKILL');
    await third.exited;
    expect(await effectCount(after)).toBe(1);
    const fourth = startWorker(env);
    const again = await fourth.waitForStep((s) => s.step === 'handler-done' && s.id === after, 'the event is redelivered after the crash');
    expect(again.ran).toBe(false);
    expect(await effectCount(after)).toBe(1);
    expect(await effectCount(before)).toBe(1);
    fourth.child.kill('SIGTERM');
    await fourth.exited;
  }, 150_000);
});
