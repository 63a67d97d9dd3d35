/**
 * Test scratch space and error assertions shared by the test files.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

import { ConnectorError } from "../../src/errors.js";

/**
 * A maker of fresh temporary directories named `<prefix>…`, all removed after the file's tests.
 * Call it at a test file's top level (it registers the `after` hook there).
 */
export function tempDirs(prefix: string): () => string {
  const made: string[] = [];
  after(() => {
    for (const dir of made) {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    made.push(dir);
    return dir;
  };
}

/** `promise` rejects with a ConnectorError of `code` (whose message matches `pattern`); returns it. */
export async function rejectsWith(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<ConnectorError> {
  let caught: ConnectorError | null = null;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ConnectorError, `expected a ConnectorError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) {
      assert.match(err.message, pattern);
    }
    caught = err;
    return true;
  });
  return caught as unknown as ConnectorError;
}

/** `fn` throws a ConnectorError of `code` whose message matches `pattern`. */
export function throwsWith(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConnectorError, `expected a ConnectorError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}
