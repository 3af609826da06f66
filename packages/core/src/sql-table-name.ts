const TABLE_NAME = /^(pg_temp\.)?[a-z_][a-z0-9_]{0,62}$/;

/**
 * A caller's table (or column) name checked before it goes into a statement's text: the
 * audit's statements copy into temporary tables the caller names (@eventbus/outbox's and
 * @eventbus/consumer's audit copies), and a name cannot be a bound parameter.
 */
export function sqlTableName(name: string): string {
  if (!TABLE_NAME.test(name)) throw new Error(`not a table name: ${JSON.stringify(name)}`);
  return name;
}
