/**
 * Environment configuration shared by both services: each service declares its variables
 * once, as a TypeBox schema (name, type, bounds, default, description), and env-schema reads
 * them. Invalid values fail at start with CONFIG_INVALID naming the variable, instead of
 * surfacing later as odd behaviour. The deploy tests read the same schemas.
 */
import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import envSchema from 'env-schema';
import { sharedError } from './error-codes.js';
import type { CodedError } from './errors.js';

export type Env = Record<string, string | undefined>;

/** Read by shared/src/logging.ts straight from process.env; part of every service's schema so the schema lists all it reads. */
export const LoggingEnvFields = {
  LOG_LEVEL: Type.String({ default: 'info', description: 'pino level' }),
  LOG_PRETTY: Type.Optional(Type.String({ description: '`1` human-readable logs, `0` JSON lines; unset: human-readable on a terminal' })),
};

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off']);
const INTEGER = /^-?\d+$/;

/** Bounds, type and format of a variable, said the way an operator reads them. */
export function expectation(schema: TSchema): string {
  const { type, minimum, maximum, format } = schema as { type?: unknown; minimum?: number; maximum?: number; format?: string };
  if (type === 'boolean') return 'true/false (1/0, yes/no, on/off)';
  // A choice of words (a TypeBox union of literals): name them.
  const choices = (schema as { anyOf?: Array<{ const?: unknown }> }).anyOf;
  if (choices?.length && choices.every((c) => typeof c.const === 'string')) return `one of ${choices.map((c) => c.const).join(', ')}`;
  if (format === 'http-url') return 'an http(s) URL';
  if (format === 'http-url-list') return 'one or more http(s) URLs, comma-separated';
  if (type === 'integer' || type === 'number') {
    const what = type === 'integer' ? 'an integer' : 'a number';
    if (minimum !== undefined && maximum !== undefined) return `${what} between ${minimum} and ${maximum}`;
    if (minimum !== undefined) return `${what} of at least ${minimum}`;
    if (maximum !== undefined) return `${what} of at most ${maximum}`;
    return what;
  }
  return 'a valid value';
}

function invalid(name: string, value: string, schema: TSchema): never {
  throw sharedError('CONFIG_INVALID', `${name}=${JSON.stringify(value)} is invalid: expected ${expectation(schema)}`, { variable: name });
}

/**
 * Text -> typed value, stricter than Ajv's coercion: integers are plain decimal digits (Ajv
 * would take `1e3` and `0x10`), booleans take the words operators use. Ajv checks the rest.
 */
function coerce(name: string, value: string, schema: TSchema): unknown {
  const type = (schema as { type?: unknown }).type;
  if (type === 'boolean') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return invalid(name, value, schema);
  }
  if (type === 'integer') return INTEGER.test(value.trim()) ? Number(value) : invalid(name, value, schema);
  if (type === 'number') {
    const n = Number(value);
    return Number.isFinite(n) ? n : invalid(name, value, schema);
  }
  return value;
}

// env-schema's own options, but the first bad variable is enough for the message, and one format of ours.
const ajv = new Ajv({ removeAdditional: true, useDefaults: true, coerceTypes: true, allowUnionTypes: true, addUsedSchema: false, keywords: [envSchema.keywords.separator] });
const isHttpUrl = (text: string): boolean => {
  try {
    return ['http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
};
ajv.addFormat('http-url', isHttpUrl);
ajv.addFormat('http-url-list', (text: string) => {
  const items = splitList(text);
  return items.length > 0 && items.every(isHttpUrl);
});

// env-schema sets additionalProperties on the schema it gets: give it a copy, the same one each time so Ajv compiles once.
const prepared = new WeakMap<TObject, TObject>();

/**
 * The variables of `schema` read from `env`, defaults filled in. An empty value counts as
 * unset, as it always has (`FOO= npm start` keeps FOO's default).
 */
export function parseEnv<S extends TObject>(schema: S, env: Env): Static<S> {
  const data: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    const value = env[name];
    if (value !== undefined && value !== '') data[name] = coerce(name, value, property);
  }
  let copy = prepared.get(schema);
  if (!copy) prepared.set(schema, (copy = { ...schema }));
  try {
    return envSchema<Static<S>>({ schema: copy, data, env: false, ajv });
  } catch (err) {
    const first = (err as { errors?: Array<{ instancePath?: string }> }).errors?.[0];
    const name = first?.instancePath?.split('/')[1];
    const property = name === undefined ? undefined : schema.properties[name];
    if (name !== undefined && property) invalid(name, String(env[name]), property);
    throw sharedError('CONFIG_INVALID', `the configuration is invalid: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A comma-separated list, blanks dropped. */
export function splitList(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A CONFIG_INVALID for a rule between variables (a schema checks them one at a time). */
export function configInvalid(variable: string, message: string): CodedError {
  return sharedError('CONFIG_INVALID', message, { variable });
}
