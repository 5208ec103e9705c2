import * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";

/** The wire forms a client may use: Connect (unary or streaming), gRPC and gRPC-Web, each with JSON or binary messages. */
export type RawProtocol = "connect" | "grpc" | "grpc-web";

export interface RawAnswer {
  /** "ok" or the Connect code's name. */
  code: string;
  /** The error message exactly as the server sent it (decoded from its transport form). */
  message: string;
  /** Bytes of the whole answer: body, plus the status message where it travels in a header. */
  size: number;
}

const envelope = (payload: Buffer, flags = 0): Buffer => {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
};

function* frames(body: Buffer): Generator<{ flags: number; payload: Buffer }> {
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    yield { flags: body[at] as number, payload: body.subarray(at + 5, at + 5 + length) };
    at += 5 + length;
  }
}

const codeName = (code: Code | undefined) => (code === undefined ? "unknown status" : Code[code]);
const grpcAnswer = (status: string | undefined, message: string | undefined, size: number): RawAnswer => ({
  code: status === "0" ? "ok" : codeName(Number(status) as Code),
  message: decodeURIComponent(message ?? ""),
  size,
});

/** Sends `body` (one message, JSON text or protobuf bytes) as the request of `method`, exactly as given. */
export async function sendRawRpc(
  baseUrl: string,
  token: string | undefined,
  method: DescMethod,
  body: Buffer | string,
  options: { protocol: RawProtocol; json: boolean },
): Promise<RawAnswer> {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const path = `/${method.parent.typeName}/${method.name}`;
  const codec = options.json ? "json" : "proto";
  const streaming = method.methodKind === "server_streaming";
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  if (options.protocol === "grpc") {
    const session = http2.connect(baseUrl);
    try {
      return await new Promise<RawAnswer>((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": path,
          "content-type": `application/grpc+${codec}`,
          te: "trailers",
          ...auth,
        });
        let status: string | undefined;
        let message: string | undefined;
        let size = 0;
        stream.on("response", (headers) => {
          if (headers["grpc-status"] !== undefined) {
            status = String(headers["grpc-status"]);
            message = headers["grpc-message"] as string | undefined;
            size += String(message ?? "").length;
          }
        });
        stream.on("trailers", (trailers) => {
          status = String(trailers["grpc-status"]);
          message = trailers["grpc-message"] as string | undefined;
          size += String(message ?? "").length;
        });
        stream.on("data", (chunk: Buffer) => {
          size += chunk.length;
        });
        stream.on("end", () => resolve(grpcAnswer(status, message, size)));
        stream.on("error", reject);
        stream.end(envelope(bytes));
      });
    } finally {
      session.close();
    }
  }
  const framed = options.protocol === "grpc-web" || streaming;
  const contentType =
    options.protocol === "grpc-web" ? `application/grpc-web+${codec}` : streaming ? `application/connect+${codec}` : `application/${codec}`;
  const response = await fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: {
      ...auth,
      "content-type": contentType,
      ...(options.protocol === "connect" && !streaming ? { "connect-protocol-version": "1" } : {}),
    },
    body: framed ? envelope(bytes) : bytes,
  });
  const answer = Buffer.from(await response.arrayBuffer());
  const json = (b: Buffer) =>
    JSON.parse(b.toString("utf8")) as { code?: string; message?: string; error?: { code?: string; message?: string } };
  if (options.protocol === "grpc-web") {
    const inHeader = response.headers.get("grpc-status");
    if (inHeader !== null) return grpcAnswer(inHeader, response.headers.get("grpc-message") ?? "", answer.length);
    for (const { flags, payload } of frames(answer)) {
      if (flags & 0x80) {
        const text = payload.toString("latin1");
        return grpcAnswer(/grpc-status:\s*(\d+)/i.exec(text)?.[1], /grpc-message:\s*(.*?)\r?$/im.exec(text)?.[1], answer.length);
      }
    }
    return { code: "no trailer", message: "", size: answer.length };
  }
  if (!streaming) {
    if (response.ok) return { code: "ok", message: "", size: answer.length };
    const error = json(answer);
    return { code: codeName(codeFromString(error.code ?? "")), message: error.message ?? "", size: answer.length };
  }
  for (const { flags, payload } of frames(answer)) {
    if (flags & 0x02) {
      const error = json(payload).error;
      return error
        ? { code: codeName(codeFromString(error.code ?? "")), message: error.message ?? "", size: answer.length }
        : { code: "ok", message: "", size: answer.length };
    }
  }
  return { code: "no end of stream", message: "", size: answer.length };
}
