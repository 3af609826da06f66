import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-fixture.js';

const CATALOG = fileURLToPath(new URL('./fixtures/catalog.mjs', import.meta.url));

describe('eventbus catalog --asyncapi (the built CLI, as a process)', () => {
  it("prints the catalog's AsyncAPI document, on the relay's routing", async () => {
    const run = await runCli(['catalog', '--asyncapi', '--catalog', CATALOG], {
      EVENTBUS_TOPIC_PREFIX: 'shop.',
      EVENTBUS_TOPIC_ROUTES: JSON.stringify({ 'user.*': 'accounts' }),
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const doc = run.json();
    expect(doc).toMatchObject({ asyncapi: '3.0.0', info: { title: 'shop events', version: '3.0.0' } });
    expect(Object.keys(doc.channels)).toEqual(['shop.order', 'accounts']);
    expect(Object.keys(doc.components.messages)).toEqual(['order.placed.v2', 'user.created.v1']);
    expect(doc.components.messages['order.placed.v2'].payload.schema.required).toEqual(['orderId', 'total']);
  });

  it('writes to --out; a module without a catalog is exit 3 naming its exports; no --asyncapi is a usage error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'eventbus-catalog-'));
    try {
      const out = join(dir, 'asyncapi.json');
      const written = await runCli(['catalog', '--asyncapi', '--catalog', CATALOG, '--out', out], {});
      expect(written.code).toBe(0);
      expect(JSON.parse(await readFile(out, 'utf8')).asyncapi).toBe('3.0.0');
      const wrongExport = await runCli(['catalog', '--asyncapi', '--catalog', CATALOG, '--export', 'orderPlaced'], {});
      expect(wrongExport.code).toBe(3);
      expect(wrongExport.stderr).toContain('export "orderPlaced" is not a defineCatalog() result (exports: catalog, orderPlaced, userCreated)');
      const noFormat = await runCli(['catalog', '--catalog', CATALOG], {});
      expect(noFormat.code).toBe(2);
      expect(noFormat.stderr).toContain('--asyncapi');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
