// test lane: fast
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createCredentialsCipher, resolveCredentialsKey } from "../core/security/credentials-cipher.js";

const oldKey = randomBytes(32).toString("base64");
const newKey = randomBytes(32).toString("hex");

test("an envelope round-trips and hides the plaintext", () => {
  const cipher = createCredentialsCipher(oldKey);
  const envelope = cipher.encrypt("hunter2", "server-1");
  assert.ok(!envelope.includes("hunter2"));
  assert.equal(cipher.decrypt(envelope, "server-1"), "hunter2");
  assert.notEqual(cipher.encrypt("hunter2", "server-1"), envelope, "a fresh IV every time");
});

test("tampering or moving an envelope to another row is detected", () => {
  const cipher = createCredentialsCipher(oldKey);
  const envelope = cipher.encrypt("hunter2", "server-1");
  assert.throws(() => cipher.decrypt(envelope, "server-2"), /failed authentication/);
  const parts = envelope.split(".");
  parts[4] = Buffer.from("x".repeat(7)).toString("base64url");
  assert.throws(() => cipher.decrypt(parts.join("."), "server-1"), /failed authentication/);
});

test("the key rotates: the first key encrypts, every listed key decrypts", () => {
  const before = createCredentialsCipher(oldKey).encrypt("old secret", "s");
  const rotated = createCredentialsCipher(`${newKey},${oldKey}`);
  assert.equal(rotated.decrypt(before, "s"), "old secret");
  const after = rotated.encrypt("new secret", "s");
  assert.equal(after.split(".")[1], rotated.activeKeyId);
  assert.throws(() => createCredentialsCipher(oldKey).decrypt(after, "s"), /not configured/);
});

test("malformed keys are refused", () => {
  assert.throws(() => createCredentialsCipher("c2hvcnQ="), /32 bytes/);
  assert.throws(() => createCredentialsCipher(""), /empty/);
});

test("the embedded default generates one owner-only key file and reuses it", () => {
  const dir = mkdtempSync(join(tmpdir(), "axion-key-"));
  try {
    const first = resolveCredentialsKey(undefined, dir);
    assert.ok(first.generatedFile);
    assert.equal(statSync(first.generatedFile).mode & 0o777, 0o600);
    assert.equal(resolveCredentialsKey(undefined, dir).spec, first.spec);
    assert.equal(readFileSync(first.generatedFile, "utf8").trim(), first.spec);
    assert.equal(resolveCredentialsKey("configured", dir).generatedFile, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
