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
    // One tenant, so one partition: an event that succeeds (offset 0), the failing one (offset 1),
    // four that succeed after it.
    const [, failing, ...healthy] = await f.publish(prefix, [
      { tenantId: 'acme', eventType: 'order.placed', payload: {} },
      { tenantId: 'acme', eventType: 'order.placed', payload: { fail: true } },
      ...Array.from({ length: 4 }, () => ({ tenantId: 'acme', eventType: 'order.placed', payload: {} })),
    ]);

    const first = startWorker({ ...env, HOLD_COPIES: '1' });
    await first.waitForStep((s) => s.step === 'copies', 'the first worker asks for the retry copy');
    // The batch went on past the failure: the later events were handled while the copy waits.
    for (const id of healthy) await first.waitForStep((s) => s.step === 'handled' && s.id === id, `the first worker handles ${id}`);
    // So does the partition: events written after the batch are fetched and handled while the
    // copy is still unacknowledged (the tenants sharing a failing tenant's partition do not wait).
    const later = await f.publish(prefix, [{ tenantId: 'acme', eventType: 'order.placed', payload: {} }]);
    for (const id of later) await first.waitForStep((s) => s.step === 'handled' && s.id === id, `the first worker handles ${id}, written later`);
    // Longer than two commit intervals (1 s each): a resolved offset would have been committed by now.
    await new Promise((r) => setTimeout(r, 2500));
    const [committed] = await f.committedOffsets(groupId, `${prefix}order`);
    expect(committed).toBe(1); // offset 0 committed, nothing past offset 1, the failing event
    first.child.kill('SIGKILL');

    const second = startWorker(env);
    // Read again from the failing event: its first attempt again, then its retry through the retry topic.
    await second.waitForStep((s) => s.step === 'handled' && s.id === failing && s.attempt === 1, 'the next worker handles the failed event again');
    await second.waitForStep((s) => s.step === 'handled' && s.id === failing && s.attempt === 2, 'the retry copy reaches the next worker');
    second.child.kill('SIGTERM');
  });

  it('reads the partition again from an event whose copy Kafka did not take, and commits past it only after its copy is stored', {
    timeout: 90_000,
  }, async () => {
    const prefix = f.prefix();
    const groupId = f.group('refused');
    const env = { KAFKA_BROKERS: f.brokers.join(','), TOPIC_PREFIX: prefix, GROUP_ID: groupId };
    const [failing, ...healthy] = await f.publish(prefix, [
      { tenantId: 'acme', eventType: 'order.placed', payload: { fail: true } },
      ...Array.from({ length: 2 }, () => ({ tenantId: 'acme', eventType: 'order.placed', payload: {} })),
    ]);
    // The copy sent again is stored only after 4 s: long enough to see what is committed meanwhile.
    const worker = startWorker({ ...env, REFUSE_FIRST_COPY: '1', LATER_COPIES_DELAY_MS: '4000' });
    // The first copy is refused: the event is handled again from the start of the rewound
    // partition (its first attempt twice), its copy sent again, then its retry arrives.
    await worker.waitForStep((s) => s.step === 'copies' && worker.steps.filter((x) => x.step === 'copies').length >= 2, 'the copy is sent again');
    const firstAttempts = worker.steps.filter((s) => s.step === 'handled' && s.id === failing && s.attempt === 1);
    expect(firstAttempts.length).toBeGreaterThanOrEqual(2);
    // The healthy events after it were handled (before the refusal), but while the copy sent again
    // is not stored, nothing past the failed event is committed: longer than two commit intervals.
    await new Promise((r) => setTimeout(r, 2500));
    expect(worker.steps.some((s) => s.step === 'handled' && s.id === failing && s.attempt === 2)).toBe(false); // still held
    const [committed] = await f.committedOffsets(groupId, `${prefix}order`);
    expect(committed ?? -1).toBeLessThanOrEqual(0);
    await worker.waitForStep((s) => s.step === 'handled' && s.id === failing && s.attempt === 2, 'the retry copy arrives');
    // Handled before the refusal, while the copy was on its way, and again from the rewound partition.
    for (const id of healthy) expect(worker.steps.filter((s) => s.step === 'handled' && s.id === id).length).toBeGreaterThanOrEqual(2);
    // Now everything is stored: the commit passes the failed event (offset 0) and the others.
    await waitFor(async () => ((await f.committedOffsets(groupId, `${prefix}order`))[0] ?? -1) >= 3 || undefined, {
      timeoutMs: 20_000,
      message: 'the partition is committed past the events once the copy was stored',
    });
    worker.child.kill('SIGTERM');
  });
});
