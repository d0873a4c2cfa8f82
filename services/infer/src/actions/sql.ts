/**
 * SQL text for the PostgreSQL actions, built only from validated identifiers. Names come from
 * pipeline.json (an archive is outside input), so every schema, table and column name must
 * be a plain SQL identifier and is double-quoted; every value is a bound parameter.
 */
import { coded } from '../error-codes.js';

/** The original worker wrote everything into this schema. */
export const DEFAULT_SCHEMA = 'gas_station_1';
export const DEFAULT_INITIAL_TABLE = 'car_frontal_info';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

function show(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
}

/** Why `name` is not usable as an identifier, or undefined when it is. */
export function identifierProblem(name: string, what: string): string | undefined {
  if (IDENTIFIER.test(name)) return undefined;
  return `${what} ${show(name)} is not a plain SQL identifier (letters, digits and _, not starting with a digit, at most 63 characters)`;
}

export function quoteIdentifier(name: string, what = 'name'): string {
  const problem = identifierProblem(name, what);
  if (problem) throw coded('SQL_IDENTIFIER_INVALID', problem, { [what.replace(/\s+/g, '_')]: name });
  // The pattern admits no quote, so quoting cannot be escaped; quoting keeps case and
  // allows reserved words like "user".
  return `"${name}"`;
}

export interface TableName {
  schema: string;
  table: string;
  /** `schema.table`, for outcomes and logs. */
  label: string;
  /** `"schema"."table"`, for SQL text. */
  sql: string;
}

/** `table` or `schema.table`; the default schema when none is named. */
export function parseTableName(name: string, defaultSchema = DEFAULT_SCHEMA): TableName {
  const parts = name.split('.');
  if (parts.length > 2) throw coded('SQL_IDENTIFIER_INVALID', `table ${show(name)} must be "table" or "schema.table"`, { table: name });
  const [schema, table] = parts.length === 2 ? [parts[0]!, parts[1]!] : [defaultSchema, parts[0]!];
  const sql = `${quoteIdentifier(schema, 'schema')}.${quoteIdentifier(table, 'table')}`;
  return { schema, table, label: `${schema}.${table}`, sql };
}

/** Marks a field that takes SQL NOW() instead of a bound value. */
export const SQL_NOW = Symbol('NOW()');
export type SqlValue = string | typeof SQL_NOW;

/** The literal template `NOW()` (any case, surrounding blanks) means the SQL function. */
export function isNowLiteral(template: string): boolean {
  return template.trim().toUpperCase() === 'NOW()';
}

export interface Statement {
  text: string;
  values: string[];
}

export interface UpsertSpec {
  table: TableName;
  keyColumn: string;
  keyValue: string;
  /** Column -> value, in order; the key column must not be among them. */
  fields: ReadonlyArray<readonly [string, SqlValue]>;
  /** Also set updated_at = NOW() on update (when the table has that column and fields do not). */
  touchUpdatedAt: boolean;
}

/** INSERT … ON CONFLICT (key) DO UPDATE SET …: safe to repeat, so retries cannot duplicate rows. */
export function buildUpsert(spec: UpsertSpec): Statement {
  const key = quoteIdentifier(spec.keyColumn, 'key_field');
  const values: string[] = [spec.keyValue];
  const columns = [key];
  const placeholders = ['$1'];
  const updates: string[] = [];
  for (const [column, value] of spec.fields) {
    const col = quoteIdentifier(column, 'column');
    if (col === key) throw coded('SQL_IDENTIFIER_INVALID', `column ${show(column)} is the key_field and cannot also be a field`);
    columns.push(col);
    if (value === SQL_NOW) placeholders.push('NOW()');
    else {
      values.push(value);
      placeholders.push(`$${values.length}`);
    }
    updates.push(`${col} = EXCLUDED.${col}`);
  }
  if (spec.touchUpdatedAt && !spec.fields.some(([c]) => c === 'updated_at')) updates.push('"updated_at" = NOW()');
  const conflict = updates.length ? `DO UPDATE SET ${updates.join(', ')}` : 'DO NOTHING';
  return {
    text: `INSERT INTO ${spec.table.sql} (${columns.join(', ')}) VALUES (${placeholders.join(', ')}) ON CONFLICT (${key}) ${conflict}`,
    values,
  };
}

/** The original's car_frontal_info layout (spec/mpta-pipeline-format.md "Table Schema"). */
export function createInitialTableStatements(table: TableName): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(table.schema, 'schema')}`,
    `CREATE TABLE IF NOT EXISTS ${table.sql} (
  display_id VARCHAR(255),
  captured_timestamp VARCHAR(255),
  session_id VARCHAR(255) PRIMARY KEY,
  license_character VARCHAR(255) DEFAULT NULL,
  license_type VARCHAR(255) DEFAULT 'No model available',
  car_brand VARCHAR(255) DEFAULT NULL,
  car_model VARCHAR(255) DEFAULT NULL,
  car_body_type VARCHAR(255) DEFAULT NULL,
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW()
)`,
    // Tables made by older versions of the original lack some columns.
    ...['car_brand VARCHAR(255) DEFAULT NULL', 'car_model VARCHAR(255) DEFAULT NULL', 'car_body_type VARCHAR(255) DEFAULT NULL', 'updated_at TIMESTAMP DEFAULT NOW()'].map(
      (column) => `ALTER TABLE ${table.sql} ADD COLUMN IF NOT EXISTS ${column}`,
    ),
  ];
}

export interface InitialRow {
  sessionId: string;
  displayId: string | null;
  capturedTimestamp: string;
}

/** ON CONFLICT DO NOTHING: a retried request finds its session row and leaves it alone. */
export function buildInitialInsert(table: TableName, row: InitialRow): { text: string; values: Array<string | null> } {
  return {
    text: `INSERT INTO ${table.sql} ("session_id", "display_id", "captured_timestamp") VALUES ($1, $2, $3) ON CONFLICT ("session_id") DO NOTHING`,
    values: [row.sessionId, row.displayId, row.capturedTimestamp],
  };
}

export const COLUMNS_QUERY = 'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2';
