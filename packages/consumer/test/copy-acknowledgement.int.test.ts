import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@eventbus/dev-services';
import { consumerFixture } from './consumer-fixture.js';

// Retry and DLQ copies are sent without waiting where the handler failed, and the batch goes
// on. The failed message's offset (and every later one of its partition) may be committed only
// once Kafka acknowledged the copy: killed before that, the process must leave the failed event
// to be read again, not lost with neither a copy nor a redelivery.
const WORKER = fileURLToPath(new URL('./copy-worker.mjs', import.meta.url));

let f: Awaited<ReturnType<typeof consumerFixture>>;
const children: ChildProcess[] = [];
beforeAll(async () => {
  f = await consumerFixture('copy-ack');
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await f?.close();
});

interface Step {
  step: string;
  id?: string;
  attempt?: number;
  fail?: boolean;
  count?: number;
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
  const waitForStep = (match: (s: Step) => boolean, message: string) =>
    waitFor(() => steps.find(match), { timeoutMs: 45_000, message: `${message} (worker stderr: ${stderr.slice(-500)})` });
  return { child, steps, waitForStep };
}

describe('a consumer killed while a retry copy is unacknowledged (real Kafka, separate processes)', () => {
  it('has not committed past the failed message, so the next member handles it again and sends its copy', { timeout: 90_000 }, async () => {
    const prefix = f.prefix();
    const groupId = f.group('copies');
    const env = { KAFKA_BROKERS: f.brokers.join(','), TOPIC_PREFIX: prefix, GROUP_ID: groupId };
    // One tenant, so one partition: the failing event first, four that succeed after it.
    const [failing, ...healthy] = await f.publish(prefix, [
      { tenantId: 'acme', eventType: 'order.placed', payload: { fail: true } },
      ...Array.from({ length: 4 }, () => ({ tenantId: 'acme', eventType: 'order.placed', payload: {} })),
    ]);

    const first = startWorker({ ...env, HOLD_COPIES: '1' });
    await first.waitForStep((s) => s.step === 'copies', 'the first worker asks for the retry copy');
    // The batch went on past the failure: the later events were handled while the copy waits.
    for (const id of healthy) await first.waitForStep((s) => s.step === 'handled' && s.id === id, `the first worker handles ${id}`);
    // Longer than two commit intervals (1 s each): a resolved offset would have been committed by now.
    await new Promise((r) => setTimeout(r, 2500));
    const [committed] = await f.committedOffsets(groupId, `${prefix}order`);
    expect(committed ?? -1).toBeLessThanOrEqual(0); // nothing committed past offset 0, the failing event
    first.child.kill('SIGKILL');

    const second = startWorker(env);
    // Read again from the failing event: its first attempt again, then its retry through the retry topic.
    await second.waitForStep((s) => s.step === 'handled' && s.id === failing && s.attempt === 1, 'the next worker handles the failed event again');
    await second.waitForStep((s) => s.step === 'handled' && s.id === failing && s.attempt === 2, 'the retry copy reaches the next worker');
    second.child.kill('SIGTERM');
  });
});
