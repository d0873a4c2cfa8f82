/**
 * Environment parsing shared by both services. Invalid values fail at start with a message
 * that names the variable, instead of surfacing later as odd behaviour.
 */
import { CodedError } from './errors.js';

export type Env = Record<string, string | undefined>;

function bad(name: string, value: string, expected: string): never {
  throw new CodedError('CONFIG_INVALID', `${name}=${JSON.stringify(value)} is invalid: expected ${expected}`, 500, { variable: name });
}

export function envString(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v === '' ? fallback : v;
}

export function envOptionalString(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

export function envInt(env: Env, name: string, fallback: number, { min = -Infinity, max = Infinity } = {}): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (!/^-?\d+$/.test(v.trim())) bad(name, v, 'an integer');
  const n = Number(v);
  if (n < min || n > max) bad(name, v, `an integer between ${min} and ${max}`);
  return n;
}

export function envNumber(env: Env, name: string, fallback: number, { min = -Infinity, max = Infinity } = {}): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) bad(name, v, 'a number');
  if (n < min || n > max) bad(name, v, `a number between ${min} and ${max}`);
  return n;
}

export function envBool(env: Env, name: string, fallback: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  return bad(name, v, 'true/false (1/0)');
}

export function envList(env: Env, name: string): string[] {
  const v = env[name];
  if (!v) return [];
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function envUrl(env: Env, name: string, fallback: string): string {
  const v = envString(env, name, fallback);
  try {
    const u = new URL(v);
    if (!['http:', 'https:'].includes(u.protocol)) bad(name, v, 'an http(s) URL');
  } catch (err) {
    if (err instanceof CodedError) throw err;
    bad(name, v, 'an http(s) URL');
  }
  return v;
}
