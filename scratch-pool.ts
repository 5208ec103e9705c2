import { KeyParsingPool } from "./core/key-parsing.js";
import { ed25519KeyPair } from "./test/support/keys.js";
const pool = new KeyParsingPool({ deadlineMs: 60000 });
const k = ed25519KeyPair("pw", 16);
console.time("p");
pool.prepare(k.privateKey, "pw").then((r) => { console.timeEnd("p"); console.log(r.ok); return pool.close(); });
