import type { AddressInfo } from "node:net";
import ssh2 from "ssh2";

export interface TestSshServer {
  port: number;
  /** TCP connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/**
 * A real SSH server (ssh2's) on loopback that accepts exactly one public key
 * and answers every command with "ok": enough to prove a login works.
 */
export async function startTestSshServer(authorizedPublicKey: string): Promise<TestSshServer> {
  const authorized = ssh2.utils.parseKey(authorizedPublicKey);
  if (authorized instanceof Error) throw authorized;
  const allowed = Array.isArray(authorized) ? authorized[0] : authorized;
  const hostKey = ssh2.utils.generateKeyPairSync("ecdsa", { bits: 256 }).private;
  const state = { connections: 0 };
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    state.connections += 1;
    client.on("error", () => {});
    client.on("authentication", (ctx) => {
      if (ctx.method !== "publickey" || ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowed.getPublicSSH())) return ctx.reject();
      if (!ctx.signature) return ctx.accept();
      return allowed.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) ? ctx.accept() : ctx.reject();
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acceptExec) => {
          const stream = acceptExec();
          stream.write("ok\n");
          stream.exit(0);
          stream.end();
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return state.connections;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
