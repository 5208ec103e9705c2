// test lane: fast
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  calculateRequirements,
  type DependencyInput,
  type ResourceAmounts,
  type ServerCapacity,
  type ServiceNodeInput,
} from "../core/inventory/requirements.js";
import { AppError } from "../core/kernel/errors.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const res = (cpuMillis: number, memoryBytes: number, diskBytes: number): ResourceAmounts => ({ cpuMillis, memoryBytes, diskBytes });
const svc = (name: string, requests: ResourceAmounts, replicas = 1): ServiceNodeInput => ({ name, requests, replicas });
const dep = (from: string, to: string): DependencyInput => ({ from, to });
const server = (serverId: string, capacity: ResourceAmounts, used = res(0, 0, 0)): ServerCapacity => ({ serverId, capacity, used });

function assertInvalid(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AppError, String(err));
    assert.equal(err.kind, "invalid_argument");
    assert.equal(err.field, field);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe("totals and start order", () => {
  test("total is the sum of requests times replicas, 0 replicas counting as 1", () => {
    const result = calculateRequirements(
      [svc("web", res(250, 512 * MiB, GiB), 3), svc("db", res(1000, 2 * GiB, 10 * GiB), 0), svc("worker", res(500, 256 * MiB, 0), 2)],
      [],
    );
    // cpu:  3×250 + 1×1000 + 2×500 = 750 + 1000 + 1000 = 2750
    // mem:  3×512Mi + 1×2Gi + 2×256Mi = 1536Mi + 2048Mi + 512Mi = 4096Mi = 4Gi
    // disk: 3×1Gi + 1×10Gi + 2×0 = 13Gi
    assert.deepEqual(result.total, res(2750, 4 * GiB, 13 * GiB));
    assert.equal(result.fit, undefined);
  });

  test("diamond: dependencies first, alphabetical among the ready", () => {
    const services = ["z", "app", "worker", "api", "db", "cache"].map((n) => svc(n, res(1, 1, 1)));
    const deps = [dep("app", "api"), dep("app", "worker"), dep("api", "db"), dep("worker", "db"), dep("api", "db")];
    // ready [cache, db, z] → cache; → db, which readies api and worker: [api, worker, z] → api (app waits for worker)
    // → worker, which readies app: [app, z] → app → z
    const expected = ["cache", "db", "api", "worker", "app", "z"];
    assert.deepEqual(calculateRequirements(services, deps).startOrder, expected);
    assert.deepEqual(calculateRequirements([...services].reverse(), [...deps].reverse()).startOrder, expected);
  });
});

describe("validation", () => {
  test("a cycle is reported as a path, rotated to its smallest name", () => {
    const abc = ["a", "b", "c", "d"].map((n) => svc(n, res(0, 0, 0)));
    assertInvalid(
      () => calculateRequirements(abc, [dep("a", "b"), dep("b", "c"), dep("c", "a"), dep("d", "a")]),
      "dependencies",
      /form a cycle: a -> b -> c -> a$/,
    );
    // a is stuck behind the cycle but not on it: a -> b -> c -> b, the cycle is b -> c -> b.
    assertInvalid(
      () => calculateRequirements(abc, [dep("a", "b"), dep("b", "c"), dep("c", "b")]),
      "dependencies",
      /form a cycle: b -> c -> b$/,
    );
  });

  test("unknown services and self-dependencies", () => {
    const ab = [svc("a", res(0, 0, 0)), svc("b", res(0, 0, 0))];
    assertInvalid(() => calculateRequirements(ab, [dep("a", "b"), dep("a", "nope")]), "dependencies[1].to", /names no service: "nope"/);
    assertInvalid(() => calculateRequirements(ab, [dep("x", "b")]), "dependencies[0].from");
    assertInvalid(() => calculateRequirements(ab, [dep("b", "b")]), "dependencies[0].to", /cannot depend on itself/);
  });

  test("duplicate names", () => {
    const services = [svc("a", res(0, 0, 0)), svc("b", res(0, 0, 0)), svc("a", res(0, 0, 0))];
    assertInvalid(() => calculateRequirements(services, []), "services[2].name", /services\[0\]/);
  });

  test("service fields", () => {
    const ok = svc("ok", res(0, 0, 0));
    assertInvalid(() => calculateRequirements([], []), "services");
    assertInvalid(
      () =>
        calculateRequirements(
          Array.from({ length: 1001 }, (_, i) => svc(`s${i}`, res(0, 0, 0))),
          [],
        ),
      "services",
    );
    for (const name of ["", "Web", "-a", "a-", "a_b", "a".repeat(64)]) {
      assertInvalid(() => calculateRequirements([ok, svc(name, res(0, 0, 0))], []), "services[1].name");
    }
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assertInvalid(() => calculateRequirements([ok, svc("x", res(bad, 0, 0))], []), "services[1].requests.cpu_millis");
      assertInvalid(() => calculateRequirements([ok, svc("x", res(0, bad, 0))], []), "services[1].requests.memory_bytes");
      assertInvalid(() => calculateRequirements([ok, svc("x", res(0, 0, bad))], []), "services[1].requests.disk_bytes");
    }
    assertInvalid(() => calculateRequirements([svc("x", res(0, 0, 0), 1001)], []), "services[0].replicas");
    assertInvalid(() => calculateRequirements([svc("x", res(0, 0, 0), -1)], []), "services[0].replicas");
    assert.equal(calculateRequirements([svc("x", res(0, 0, 0), 1000)], []).total.cpuMillis, 0);
    // 1000 replicas × 2^50 bytes = 2^60 > 2^53 - 1
    assertInvalid(() => calculateRequirements([svc("x", res(0, 2 ** 50, 0), 1000)], []), "services", /total memory_bytes/);
  });

  test("server data that cannot come from a sane inventory is an internal error", () => {
    const s = [svc("a", res(0, 0, 0))];
    const bad = (servers: ServerCapacity[]) =>
      assert.throws(
        () => calculateRequirements(s, [], servers),
        (e: unknown) => e instanceof AppError && e.kind === "internal",
      );
    bad([server("s1", res(1, 1, 1)), server("s1", res(1, 1, 1))]);
    bad([server("", res(1, 1, 1))]);
    bad([server("s1", res(-1, 1, 1))]);
  });
});

describe("fit", () => {
  test("succeeds with the expected placement", () => {
    const result = calculateRequirements(
      [svc("web", res(500, GiB, GiB), 2), svc("db", res(1000, 4 * GiB, 20 * GiB))],
      [dep("web", "db")],
      [server("s2", res(2000, 4 * GiB, 50 * GiB)), server("s1", res(4000, 8 * GiB, 100 * GiB), res(1000, 2 * GiB, 10 * GiB))],
    );
    // free: s1 = (3000, 6Gi, 90Gi), s2 = (2000, 4Gi, 50Gi); total free = (5000, 10Gi, 140Gi)
    // shares: db  = max(1000/5000, 4/10, 20/140) = 0.4 (memory)
    //         web = max(500/5000, 1/10, 1/140)   = 0.1 (cpu; ties with memory, cpu is checked first)
    // db#0:  both fit; memory headroom s1 6/10 > s2 4/10 → s1, left (2000, 2Gi, 70Gi)
    // web#0: cpu headroom s1 2000/5000 = s2 2000/5000; overall s1 0.4+0.2+0.5 = 1.1 < s2 0.4+0.4+0.357 = 1.157
    //        → s2, left (1500, 3Gi, 49Gi)
    // web#1: s2 already runs web, s1 fits → s1, left (1500, 1Gi, 69Gi)
    assert.deepEqual(result.startOrder, ["db", "web"]);
    assert.deepEqual(result.fit, {
      fits: true,
      placements: [
        { service: "db", replica: 0, serverId: "s1" },
        { service: "web", replica: 0, serverId: "s2" },
        { service: "web", replica: 1, serverId: "s1" },
      ],
      servers: [
        { serverId: "s1", freeBefore: res(3000, 6 * GiB, 90 * GiB), freeAfter: res(1500, GiB, 69 * GiB) },
        { serverId: "s2", freeBefore: res(2000, 4 * GiB, 50 * GiB), freeAfter: res(1500, 3 * GiB, 49 * GiB) },
      ],
      unplaced: [],
      missing: res(0, 0, 0),
    });
  });

  test("fails with exact unplaced and missing", () => {
    const result = calculateRequirements(
      [svc("small", res(1000, 3 * GiB, 10 * GiB), 3), svc("big", res(3000, GiB, GiB))],
      [],
      [server("s1", res(2000, 4 * GiB, 50 * GiB)), server("s2", res(2000, 4 * GiB, 50 * GiB))],
    );
    // total free = (4000, 8Gi, 100Gi)
    // shares: big = 3000/4000 = 0.75 (cpu); small = max(0.25, 3/8, 0.1) = 0.375 (memory) → big first
    // big#0:   needs 3000 cpu, each server has 2000 → unplaced
    // small#0: full tie → smaller id s1, left (1000, 1Gi, 40Gi)
    // small#1: s1 runs small → s2, left (1000, 1Gi, 40Gi)
    // small#2: needs 3Gi, each has 1Gi → unplaced
    // needed = big + small = (4000, 4Gi, 11Gi); free left = (2000, 2Gi, 80Gi)
    // missing = max(0, needed - left) = (2000, 2Gi, 0)
    assert.deepEqual(result.fit?.placements, [
      { service: "small", replica: 0, serverId: "s1" },
      { service: "small", replica: 1, serverId: "s2" },
    ]);
    assert.equal(result.fit?.fits, false);
    assert.deepEqual(result.fit?.unplaced, ["big#0", "small#2"]);
    assert.deepEqual(result.fit?.missing, res(2000, 2 * GiB, 0));
  });

  test("replicas spread over distinct servers before doubling up", () => {
    const result = calculateRequirements(
      [svc("web", res(500, 512 * MiB, GiB), 3)],
      [],
      [server("big", res(8000, 16 * GiB, 100 * GiB)), server("small", res(1000, 2 * GiB, 100 * GiB))],
    );
    // web's dominant resource is cpu (500/9000 > 0.5/18 > 1/200)
    // web#0: cpu headroom big 8000 > small 1000 → big, left 7500
    // web#1: big runs web, small fits → small (although big still has more), left 500
    // web#2: both run web → most cpu headroom: big (7500 > 500)
    assert.deepEqual(
      result.fit?.placements.map((p) => p.serverId),
      ["big", "small", "big"],
    );
    // Preferred, not required: one server takes all replicas.
    const one = calculateRequirements([svc("web", res(500, 512 * MiB, GiB), 3)], [], [server("only", res(8000, 16 * GiB, 100 * GiB))]);
    assert.equal(one.fit?.fits, true);
    assert.deepEqual(
      one.fit?.placements.map((p) => p.serverId),
      ["only", "only", "only"],
    );
  });

  test("used above capacity leaves nothing free, not a negative amount", () => {
    const result = calculateRequirements(
      [svc("tiny", res(0, 256 * MiB, 0)), svc("needy", res(1, 0, 0))],
      [],
      [server("s1", res(1000, GiB, 10 * GiB), res(1500, 512 * MiB, 20 * GiB))],
    );
    // free = (max(0, 1000-1500), 1Gi-512Mi, max(0, 10Gi-20Gi)) = (0, 512Mi, 0)
    // needy needs 1 cpu of 0 free: share ∞ → tried first, unplaced; tiny (0, 256Mi, 0) fits
    assert.deepEqual(result.fit, {
      fits: false,
      placements: [{ service: "tiny", replica: 0, serverId: "s1" }],
      servers: [{ serverId: "s1", freeBefore: res(0, 512 * MiB, 0), freeAfter: res(0, 256 * MiB, 0) }],
      unplaced: ["needy#0"],
      missing: res(1, 0, 0),
    });
  });

  test("no servers: nothing is placed and everything is missing", () => {
    const result = calculateRequirements([svc("a", res(100, MiB, 0), 2)], [], []);
    assert.deepEqual(result.fit, { fits: false, placements: [], servers: [], unplaced: ["a#0", "a#1"], missing: res(200, 2 * MiB, 0) });
  });
});

describe("determinism", () => {
  // A larger input built from fixed arithmetic (no randomness).
  const services = Array.from({ length: 60 }, (_, i) =>
    svc(`svc-${i}`, res(((i * 37) % 900) + 100, (((i * 53) % 31) + 1) * 64 * MiB, ((i * 17) % 7) * GiB), i % 4),
  );
  const deps = services.flatMap((_, i) => (i >= 3 ? [dep(`svc-${i}`, `svc-${Math.floor(i / 2)}`), dep(`svc-${i}`, `svc-${i - 3}`)] : []));
  const servers = Array.from({ length: 9 }, (_, i) =>
    server(`srv-${i}`, res(4000 + i * 500, (8 + i) * GiB, 100 * GiB), res((i * 300) % 1000, i * GiB, i * 5 * GiB)),
  );

  test("same input twice gives the same output", () => {
    const a = calculateRequirements(services, deps, servers);
    const b = calculateRequirements(structuredClone(services), structuredClone(deps), structuredClone(servers));
    assert.deepEqual(a, b);
    // The fixture exercises both outcomes.
    assert.ok(a.fit && a.fit.placements.length > 0 && a.fit.unplaced.length > 0);
  });

  test("the order of servers, services and dependencies does not matter", () => {
    const a = calculateRequirements(services, deps, servers);
    const rotate = <T>(xs: T[], n: number) => [...xs.slice(n), ...xs.slice(0, n)];
    assert.deepEqual(calculateRequirements(services, deps, [...servers].reverse()), a);
    assert.deepEqual(calculateRequirements(services, deps, rotate(servers, 4)), a);
    assert.deepEqual(calculateRequirements([...services].reverse(), rotate(deps, 11), rotate(servers, 2)), a);
  });
});
