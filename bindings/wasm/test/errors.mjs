// Shared by the tests: how a refused call's RollguardError is taken apart.
import assert from "node:assert/strict";

/** The thrown error's code and path; fails unless it is a RollguardError. */
export function thrown(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error);
    assert.equal(e.name, "RollguardError");
    return { code: e.code, path: e.path };
  }
  assert.fail("expected a RollguardError");
}
