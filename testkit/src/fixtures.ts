/**
 * Test fixtures live in ../shared/fixtures beside the checkout and are never copied into
 * the repository. Tests that need them skip with a clear message when the folder is
 * absent, and fail instead when REQUIRE_FIXTURES=1 (CI sets it). Tests that need an outside
 * service do the same through requireService() and REQUIRE_SERVICES=1.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'services'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export const repoRoot = findRepoRoot();

export function fixturesDir(): string {
  return resolve(process.env.FIXTURES_DIR ?? join(repoRoot, '..', 'shared', 'fixtures'));
}

export function fixturesRequired(): boolean {
  return process.env.REQUIRE_FIXTURES === '1';
}

/**
 * Path of a fixture file, or `undefined` after skipping the test (node:test context) when
 * fixtures are missing. Throws when they are missing and REQUIRE_FIXTURES=1.
 */
export function fixture(t: { skip: (message?: string) => void }, relative: string): string | undefined {
  const path = join(fixturesDir(), relative);
  if (existsSync(path)) return path;
  const message = `fixture ${relative} not found under ${fixturesDir()} (set FIXTURES_DIR or place ../shared/fixtures beside the checkout)`;
  if (fixturesRequired()) throw new Error(`${message}; REQUIRE_FIXTURES=1 makes this a failure`);
  t.skip(message);
  return undefined;
}

export function servicesRequired(): boolean {
  return process.env.REQUIRE_SERVICES === '1';
}

/**
 * For a test that cannot run because an outside program or server is missing (Redis,
 * PostgreSQL, ffmpeg, Chromium): skips with a message that says what is missing, or throws
 * when REQUIRE_SERVICES=1 (CI sets it), so a missing service never passes as a skip.
 */
export function requireService(t: { skip: (message?: string) => void }, service: string, reason?: string): void {
  const message = `${service} unavailable${reason ? `: ${reason}` : ''}`;
  if (servicesRequired()) throw new Error(`${message}; REQUIRE_SERVICES=1 makes this a failure`);
  t.skip(message);
}

/** Same as fixture() for code without a test context (benchmarks): throws when missing. */
export function fixturePath(relative: string): string {
  const path = join(fixturesDir(), relative);
  if (!existsSync(path)) throw new Error(`fixture ${relative} not found under ${fixturesDir()}`);
  return path;
}
