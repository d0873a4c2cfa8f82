/**
 * The PostgreSQL writes: `postgresql_update_combined` (an upsert of templated fields keyed by
 * a templated value, once the branches it waits for have answered) and the initial record
 * (one row per detection session, made before the branches run). Names are validated and
 * quoted, values are bound parameters.
 */
import type { InitialRecordConfig, PostgresUpdateCombinedAction } from '@detector-worker/shared/pipeline/schema';
import { errorMessage } from '@detector-worker/shared/errors';
import { renderTemplate, type RenderResult } from '@detector-worker/shared/templates';
import pg from 'pg';
import type { ActionEvent } from '../pipeline/types.js';
import { eventLookup, noServer, type ActionDeps } from './action-deps.js';
import type { PostgresConnection } from './connections.js';
import { formatTimestamp } from '../pipeline/event-context.js';
import { sessionIdFor } from '../pipeline/session.js';
import { DEFAULT_INITIAL_TABLE, SQL_NOW, buildInitialInsert, buildUpsert, identifierProblem, isNowLiteral, parseTableName, type SqlValue, type TableName } from './sql.js';
import type { OutcomeBody } from './write-policy.js';

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

export async function updateCombined(action: PostgresUpdateCombinedAction, event: ActionEvent, deps: ActionDeps): Promise<OutcomeBody> {
  const missing = action.waitForBranches.filter((b) => !hasOwn(event.branchResults, b));
  if (missing.length) return { status: 'skipped', reason: `waiting for branch results that did not arrive: ${missing.join(', ')}` };
  const conn = deps.servers.of(event.pipelineKey)?.postgres;
  if (!conn) return noServer('postgresql');

  const problems = updateNameProblems(action);
  if (problems.length) return { status: 'failed', reason: `refused: ${problems.join('; ')}` };
  const table = parseTableName(action.table, deps.schema);

  const lookup = eventLookup(event);
  const key = renderTemplate(action.key_value, lookup, { json: false });
  if (key.missing.length || !key.text) return { status: 'skipped', reason: `key_value ${JSON.stringify(action.key_value)} has no value (${key.missing.join(', ') || 'empty'})`, target: table.label };

  const fields: Array<[string, SqlValue]> = [];
  const unresolved: string[] = [];
  for (const [column, template] of Object.entries(action.fields)) {
    if (column === action.key_field) continue;
    if (isNowLiteral(template)) {
      fields.push([column, SQL_NOW]);
      continue;
    }
    const r: RenderResult = renderTemplate(template, lookup, { json: false });
    if (r.missing.length) unresolved.push(`${column} (${r.missing.join(', ')})`);
    else fields.push([column, r.text]);
  }
  // NOW() alone carries no detection data: nothing to write.
  if (!fields.some(([, v]) => v !== SQL_NOW)) return { status: 'skipped', reason: `no field could be resolved: ${unresolved.join(', ') || 'none given'}`, target: table.label };

  const keyValue = key.text;
  const result = await deps.writes.write(conn, {
    type: 'postgresql_update_combined',
    node: event.node.modelId,
    target: table.label,
    run: async () => {
      const columns = await conn.tableColumns(table);
      const statement = buildUpsert({ table, keyColumn: action.key_field, keyValue, fields, touchUpdatedAt: columns.has('updated_at') });
      await conn.query(statement.text, statement.values);
    },
  });
  if (result.status === 'ok' && unresolved.length) result.reason = `left out unresolved fields: ${unresolved.join(', ')}`;
  return result;
}

export async function writeInitialRecord(conn: PostgresConnection, config: InitialRecordConfig, event: ActionEvent, deps: ActionDeps): Promise<OutcomeBody> {
  const tableName = config.table ?? DEFAULT_INITIAL_TABLE;
  let table: TableName;
  try {
    table = parseTableName(tableName, deps.schema);
  } catch (err) {
    return { status: 'failed', reason: `refused: ${errorMessage(err)}` };
  }
  const sessionId = sessionIdFor(event.request, event.node.modelId);
  const ts = event.context.timestamp;
  const display = event.context.display_id;
  const statement = buildInitialInsert(table, {
    sessionId,
    displayId: display === null || display === undefined ? null : String(display),
    capturedTimestamp: typeof ts === 'string' && ts ? ts : formatTimestamp(Date.now()),
  });
  const result = await deps.writes.write(conn, {
    type: 'initial_record',
    node: event.node.modelId,
    target: table.label,
    run: async () => {
      await conn.ensureInitialTable(table);
      try {
        await conn.query(statement.text, statement.values);
      } catch (err) {
        // The table was dropped behind our back (cached as created): create it again once.
        if (!(err instanceof pg.DatabaseError) || !['42P01', '3F000'].includes(err.code ?? '')) throw err;
        conn.forgetTable(table);
        await conn.ensureInitialTable(table);
        await conn.query(statement.text, statement.values);
      }
    },
  });
  // The session exists (or will, once the queued insert lands): later actions key on it.
  if (result.status === 'ok' || result.queued) event.context.session_id = sessionId;
  return result;
}

/** Every unusable schema/table/column name of an update action, as readable problems. */
export function updateNameProblems(action: Pick<PostgresUpdateCombinedAction, 'table' | 'key_field' | 'fields'>): string[] {
  const problems: string[] = [];
  const parts = action.table.split('.');
  if (parts.length > 2) problems.push(`table ${JSON.stringify(action.table)} must be "table" or "schema.table"`);
  else if (parts.length === 2) {
    const s = identifierProblem(parts[0]!, 'schema');
    const t = identifierProblem(parts[1]!, 'table');
    if (s) problems.push(s);
    if (t) problems.push(t);
  } else {
    const t = identifierProblem(action.table, 'table');
    if (t) problems.push(t);
  }
  const k = identifierProblem(action.key_field, 'key_field');
  if (k) problems.push(k);
  for (const column of Object.keys(action.fields)) {
    const c = identifierProblem(column, 'column');
    if (c) problems.push(c);
  }
  return problems;
}
