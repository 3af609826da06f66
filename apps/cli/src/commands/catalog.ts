import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { errorMessage, isEventBusError } from '@eventbus/core';
import { COMMON_FLAGS, parseCommandArgs } from '../args.js';
import { badData, usageError } from '../cli-error.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson } from '../io.js';
import { ConnectionSettings } from '../settings.js';

export const catalogCommand: Command = {
  path: ['catalog'],
  summary: 'write the AsyncAPI 3.0 document of an event catalog (defineCatalog)',
  help: `Usage: eventbus catalog --asyncapi --catalog <module> [--export <name>] [--out <file>]

Loads a JavaScript module that exports an event catalog (defineCatalog of @eventbus/contracts)
and writes its AsyncAPI 3.0 document as JSON: a channel per topic (the relay's routing), a
message per contract version with its payload's JSON Schema, the CloudEvents headers and the
key. The module runs in this process: pass your own build output, not source to be compiled.
  --asyncapi            the output format (the only one)
  --catalog <module>    path of the module, e.g. ./dist/catalog.js
  --export <name>       the export that holds the catalog (default: "catalog", else the default export)
  --out <file>          write the document there instead of stdout
  --topic-prefix <p>    EVENTBUS_TOPIC_PREFIX (default "eventbus."); EVENTBUS_TOPIC_ROUTES as the relay reads them

Examples:
  eventbus catalog --asyncapi --catalog ./dist/catalog.js > asyncapi.json
  EVENTBUS_TOPIC_PREFIX=shop. eventbus catalog --asyncapi --catalog ./dist/catalog.js --out docs/asyncapi.json`,
  async run(argv, io) {
    const { values } = parseCommandArgs('catalog', argv, {
      ...COMMON_FLAGS,
      asyncapi: { type: 'boolean' },
      catalog: { type: 'string' },
      export: { type: 'string' },
      out: { type: 'string' },
      'topic-prefix': { type: 'string' },
    });
    if (!values.asyncapi) throw usageError('say which document to write: --asyncapi (see: eventbus catalog --help)');
    if (!values.catalog) throw usageError('--catalog <module> is required, e.g. --catalog ./dist/catalog.js (see: eventbus catalog --help)');
    const routing = new ConnectionSettings(values, io.env).routing();
    const { asyncApiDocument, isEventCatalog } = await import('@eventbus/contracts');
    const exports = await loadModule(values.catalog);
    const name = values.export ?? ('catalog' in exports ? 'catalog' : 'default');
    const catalog = exports[name];
    if (!isEventCatalog(catalog)) {
      const found = Object.keys(exports).join(', ') || 'none';
      throw badData(`${values.catalog}: export "${name}" is not a defineCatalog() result (exports: ${found}); pass --export <name>`);
    }
    let document: Record<string, unknown>;
    try {
      document = asyncApiDocument(catalog, { routing });
    } catch (error) {
      if (isEventBusError(error, 'INVALID_CONFIG')) throw badData(error.message);
      throw error;
    }
    if (values.out) {
      await writeFile(values.out, `${JSON.stringify(document, null, 2)}\n`);
      note(io, `wrote the AsyncAPI document of ${catalog.contracts.length} contract(s) to ${values.out}`);
    } else printJson(io, document);
    return EXIT.ok;
  },
};

async function loadModule(path: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(resolve(process.cwd(), path)).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw badData(`cannot load ${path}: ${errorMessage(error)}`);
  }
}
