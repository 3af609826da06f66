const TABLE_NAME = /^(pg_temp\.)?[a-z_][a-z0-9_]{0,62}$/;

/**
 * A caller's table (or column) name checked before it goes into a statement's text: the
 * audit's statements copy into temporary tables the caller names, and a name cannot be a
 * bound parameter.
 */
export function tableName(name: string): string {
  if (!TABLE_NAME.test(name)) throw new Error(`not a table name: ${JSON.stringify(name)}`);
  return name;
}
