import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// drizzle-orm as ES modules costs a consumer worker about a second of CPU and tens of MB at
// start; the consumer needs it only for context.processOnce (the inbox). The relay app's
// recorder (apps/relay/test/fixtures) lists every drizzle-orm module a process resolves.
const RECORDER = fileURLToPath(new URL('../../../apps/relay/test/fixtures/record-drizzle-loads.mjs', import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

async function drizzleLoads(script: string): Promise<string[]> {
  const { stderr } = await promisify(execFile)(process.execPath, ['--import', RECORDER, '--input-type=module', '-e', script], { cwd: PACKAGE_DIR });
  const line = /drizzle-orm loads: (.*)/.exec(stderr);
  if (!line) throw new Error(`the recorder wrote nothing:\n${stderr}`);
  return JSON.parse(line[1]!) as string[];
}

describe('which drizzle-orm modules @eventbus/consumer loads', () => {
  it('none on import and for a consumer without the inbox', async () => {
    const loads = await drizzleLoads(
      "const { EventConsumer } = await import('./dist/index.js'); new EventConsumer({ brokers: ['127.0.0.1:1'], groupId: 'g' }).subscribe({ eventTypes: ['a.b'], handler: async () => {} });",
    );
    expect(loads).toEqual([]);
  });

  it('the inbox loads it when processOnce runs (the recorder sees it where it is loaded)', async () => {
    const loads = await drizzleLoads(
      "const { processOnce } = await import('./dist/index.js'); await processOnce({}, { groupId: 'g', eventId: 'e' }, async () => {}).catch(() => {});",
    );
    expect(loads).toContain('drizzle-orm/pg-core');
  });
});
