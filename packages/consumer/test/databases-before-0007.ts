import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrationsFolder, runMigrations } from '@eventbus/schema';
import { testServices } from '@eventbus/dev-services/test';

/**
 * New databases migrated to 0006, as one not yet upgraded to the inbox key of migration 0007
 * is: `open()` copies the migrations without 0007 into a temporary folder, `create(label)` makes
 * a database from them, and `close()` drops every database made and the folder.
 */
export class DatabasesBefore0007 {
  private readonly serverUrl = testServices().databaseUrl;
  private readonly created: string[] = [];
  private folder: string | undefined;
  /** The journal's tag of migration 0007 (e.g. `0007_inbox_subscription`), which errors name. */
  tag0007 = '';

  open(): void {
    this.folder = mkdtempSync(join(tmpdir(), 'inbox-0006-'));
    cpSync(migrationsFolder(), this.folder, { recursive: true });
    const journalPath = join(this.folder, 'meta', '_journal.json');
    const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: Array<{ tag: string }> };
    const tag0007 = journal.entries.find((e) => e.tag.startsWith('0007_'))?.tag;
    journal.entries = journal.entries.filter((e) => e.tag < '0007');
    if (!tag0007 || !journal.entries.at(-1)?.tag.startsWith('0006_')) throw new Error(`the journal in ${migrationsFolder()} does not end with 0006 then 0007`);
    this.tag0007 = tag0007;
    writeFileSync(journalPath, JSON.stringify(journal));
  }

  /** A new database at migration 0006; its URL. */
  async create(label: string): Promise<string> {
    if (!this.folder) throw new Error('open() first');
    const name = `eb_inbox_${label}_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: this.serverUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
    this.created.push(name);
    const url = new URL(this.serverUrl);
    url.pathname = `/${name}`;
    await runMigrations({ connectionString: url.toString(), folder: this.folder });
    return url.toString();
  }

  async close(): Promise<void> {
    if (this.folder) rmSync(this.folder, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: this.serverUrl });
    await admin.connect();
    for (const name of this.created.splice(0)) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}
