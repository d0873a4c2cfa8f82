import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SQL_NOW, buildInitialInsert, buildUpsert, createInitialTableStatements, identifierProblem, isNowLiteral, parseTableName, quoteIdentifier } from './sql.js';
import { updateNameProblems } from './postgres-actions.js';
import { checkPipelineActions } from './check.js';
import type { PipelineNode } from '@detector-worker/shared/pipeline/schema';

test('identifiers: plain names pass and are quoted; anything else is refused', () => {
  assert.equal(quoteIdentifier('car_brand'), '"car_brand"');
  assert.equal(quoteIdentifier('User'), '"User"');
  for (const bad of ['x; DROP TABLE y', 'a"b', 'brand"; --', '1abc', '', 'a'.repeat(64), 'naïve', 'a-b', 'a b']) {
    assert.ok(identifierProblem(bad, 'column'), `${JSON.stringify(bad)} must be refused`);
    assert.throws(() => quoteIdentifier(bad, 'column'), (e: Error & { code?: string }) => e.code === 'SQL_IDENTIFIER_INVALID');
  }
  assert.equal(identifierProblem('a'.repeat(63), 'column'), undefined);
});

test('table names: default schema unless one is named', () => {
  assert.deepEqual(parseTableName('car_frontal_info'), { schema: 'gas_station_1', table: 'car_frontal_info', label: 'gas_station_1.car_frontal_info', sql: '"gas_station_1"."car_frontal_info"' });
  assert.equal(parseTableName('other.cars').sql, '"other"."cars"');
  assert.equal(parseTableName('cars', 'mine').label, 'mine.cars');
  assert.throws(() => parseTableName('a.b.c'), /schema\.table/);
  assert.throws(() => parseTableName('x; DROP TABLE y'), /not a plain SQL identifier/);
  assert.throws(() => parseTableName('public.x;y'), /not a plain SQL identifier/);
});

test('upsert: bound values, NOW() as SQL, updated_at touched when asked', () => {
  const s = buildUpsert({
    table: parseTableName('car_frontal_info'),
    keyColumn: 'session_id',
    keyValue: 'abc',
    fields: [
      ['car_brand', "Toyota'); DROP TABLE x; --"],
      ['seen_at', SQL_NOW],
    ],
    touchUpdatedAt: true,
  });
  assert.equal(
    s.text,
    'INSERT INTO "gas_station_1"."car_frontal_info" ("session_id", "car_brand", "seen_at") VALUES ($1, $2, NOW()) ON CONFLICT ("session_id") DO UPDATE SET "car_brand" = EXCLUDED."car_brand", "seen_at" = EXCLUDED."seen_at", "updated_at" = NOW()',
  );
  assert.deepEqual(s.values, ['abc', "Toyota'); DROP TABLE x; --"]);
  const plain = buildUpsert({ table: parseTableName('t'), keyColumn: 'k', keyValue: '1', fields: [['updated_at', SQL_NOW]], touchUpdatedAt: true });
  assert.doesNotMatch(plain.text, /"updated_at" = NOW\(\)$/);
  assert.throws(() => buildUpsert({ table: parseTableName('t'), keyColumn: 'k', keyValue: '1', fields: [['a"b', 'v']], touchUpdatedAt: false }), /not a plain SQL identifier/);
  assert.ok(isNowLiteral(' now() '));
  assert.ok(!isNowLiteral('NOW() + 1'));
});

test('initial record statements create schema and table, insert does nothing on conflict', () => {
  const table = parseTableName('car_frontal_info', 'dw_x');
  const ddl = createInitialTableStatements(table);
  assert.equal(ddl[0], 'CREATE SCHEMA IF NOT EXISTS "dw_x"');
  assert.match(ddl[1]!, /CREATE TABLE IF NOT EXISTS "dw_x"."car_frontal_info" \(/);
  assert.match(ddl[1]!, /session_id VARCHAR\(255\) PRIMARY KEY/);
  const ins = buildInitialInsert(table, { sessionId: 's', displayId: null, capturedTimestamp: '2024-01-02T03-04-05' });
  assert.match(ins.text, /ON CONFLICT \("session_id"\) DO NOTHING$/);
  assert.deepEqual(ins.values, ['s', null, '2024-01-02T03-04-05']);
});

test('update actions with hostile names are reported, all problems at once', () => {
  const problems = updateNameProblems({ table: 'x; DROP TABLE y', key_field: 'session_id', fields: { 'a"b': '{x.y}', ok_col: '{x.z}', "c'); --": 'v' } });
  assert.equal(problems.length, 3);
  assert.match(problems[0]!, /table "x; DROP TABLE y" is not a plain SQL identifier/);
  assert.deepEqual(updateNameProblems({ table: 'gas_station_1.car_frontal_info', key_field: 'session_id', fields: { car_brand: '{b.brand}' } }), []);
});

test('checkPipelineActions finds bad names and missing servers at load time', () => {
  const node: PipelineNode = {
    modelId: 'car_frontal_detection_v1',
    modelFile: 'car_frontal_detection_v1.onnx',
    minConfidence: 0.5,
    triggerClasses: ['Car', 'Frontal'],
    multiClass: true,
    expectedClasses: ['Car', 'Frontal'],
    actions: [{ type: 'redis_publish', channel: 'c', message: 'm' }],
    parallelActions: [{ type: 'postgresql_update_combined', table: 'x; DROP TABLE y', key_field: 'session_id', key_value: '{session_id}', waitForBranches: [], fields: { car_brand: '{b.brand}' } }],
  };
  const problems = checkPipelineActions({ pipeline: node, postgresql: { host: 'h', port: 5432, database: 'd', username: 'u', password: 'p' }, initialRecord: { table: 's.t;x' } });
  assert.deepEqual(
    problems.map((p) => p.path),
    ['$.pipeline.actions[0]', '$.pipeline.parallelActions[0]', '$.initialRecord.table'],
  );
  assert.match(problems[0]!.message, /needs a "redis" server/);
});
