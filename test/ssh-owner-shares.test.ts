import assert from "node:assert/strict";
import { test } from "node:test";
import { ApplicationFailure } from "@temporalio/common";
import { SshShares } from "../activities/ssh/owner-shares.js";
import { SshErrorType } from "../workflows/failure-types.js";

const isShareBusy = (error: unknown) => error instanceof ApplicationFailure && error.type === SshErrorType.ShareBusy && error.nonRetryable;

test("an owner's sessions beyond its share wait in order; other owners are not affected; a full queue is refused at once", async () => {
  const shares = new SshShares({ perOwner: 2, waitingPerOwner: 2, maxWaitMs: 60_000 });
  const a1 = await shares.acquire("a");
  const a2 = await shares.acquire("a");
  const order: string[] = [];
  const a3 = shares.acquire("a").then((release) => {
    order.push("a3");
    return release;
  });
  const a4 = shares.acquire("a").then((release) => {
    order.push("a4");
    return release;
  });
  await assert.rejects(shares.acquire("a"), isShareBusy, "a third waiter is refused");
  const b1 = await shares.acquire("b");
  assert.deepEqual(shares.usage("a"), { active: 2, waiting: 2 });
  assert.deepEqual(shares.usage("b"), { active: 1, waiting: 0 });
  a1();
  a1(); // giving back twice frees one session only
  const release3 = await a3;
  assert.deepEqual(shares.usage("a"), { active: 2, waiting: 1 });
  a2();
  const release4 = await a4;
  assert.deepEqual(order, ["a3", "a4"]);
  for (const release of [release3, release4, b1]) release();
  assert.deepEqual(shares.usage("a"), { active: 0, waiting: 0 });
});

test("a waiter gives up after the longest wait with SshShareBusy, and a cancelled one leaves the queue with the cancellation", async () => {
  const shares = new SshShares({ perOwner: 1, waitingPerOwner: 5, maxWaitMs: 200 });
  const held = await shares.acquire("a");
  await assert.rejects(shares.acquire("a"), isShareBusy);
  const controller = new AbortController();
  const cancelled = shares.acquire("a", controller.signal);
  controller.abort(new Error("activity cancelled"));
  await assert.rejects(cancelled, /activity cancelled/);
  assert.deepEqual(shares.usage("a"), { active: 1, waiting: 0 });
  held();
  (await shares.acquire("a"))();
  assert.deepEqual(shares.usage("a"), { active: 0, waiting: 0 });
});
