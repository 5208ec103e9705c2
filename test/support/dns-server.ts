import { createSocket } from "node:dgram";
import { isIPv4 } from "node:net";

export interface TestDnsServer {
  /** "127.0.0.1:port", as DNS_SERVERS takes it. */
  address: string;
  /** Queries received so far, by name. */
  queries: string[];
  close(): Promise<void>;
}

/** The 16 bytes of an IPv6 address written in full or with "::". */
function ipv6Bytes(address: string): Buffer {
  const [head = "", tail = ""] = address.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = address.includes("::") ? [...h, ...Array(8 - h.length - t.length).fill("0"), ...t] : h;
  const bytes = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) bytes.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return bytes;
}

/**
 * A DNS server on loopback (UDP): names in `answers` get their A and AAAA records, names in
 * `silent` are never answered (a resolver that hangs), every other name is NXDOMAIN.
 */
export async function startTestDnsServer(answers: Record<string, string[]>, silent: (name: string) => boolean): Promise<TestDnsServer> {
  const socket = createSocket("udp4");
  const queries: string[] = [];
  socket.on("message", (query, peer) => {
    if (query.length < 12) return;
    let pos = 12;
    const labels: string[] = [];
    while (pos < query.length && query[pos] !== 0) {
      const length = query[pos] as number;
      labels.push(query.subarray(pos + 1, pos + 1 + length).toString("latin1"));
      pos += 1 + length;
    }
    pos += 1;
    const type = query.readUInt16BE(pos);
    const question = query.subarray(12, pos + 4);
    const name = labels.join(".").toLowerCase();
    queries.push(name);
    if (silent(name)) return;
    const known = answers[name];
    const records = (known ?? []).filter((a) => (type === 1 ? isIPv4(a) : type === 28 ? !isIPv4(a) : false));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0);
    header.writeUInt16BE(known ? 0x8180 : 0x8183, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    const rrs = records.map((address) => {
      const data = isIPv4(address) ? Buffer.from(address.split(".").map(Number)) : ipv6Bytes(address);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(type, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(data.length, 10);
      return Buffer.concat([rr, data]);
    });
    socket.send(Buffer.concat([header, question, ...rrs]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    queries,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
