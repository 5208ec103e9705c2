import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";

/** Asserts that a call fails with this Connect code and, optionally, a message matching `pattern`. */
export async function expectCode(call: Promise<unknown>, code: Code, pattern?: RegExp): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ConnectError, `expected a ConnectError, got ${String(error)}`);
    assert.equal(Code[error.code], Code[code], `code for "${error.rawMessage}"`);
    if (pattern) assert.match(error.rawMessage, pattern);
    return error;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}
