import type { ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

/**
 * connect-es answers `internal` when a binary protobuf body does not decode
 * ("parse binary: …"; a JSON body that does not decode is `invalid_argument`),
 * and it decodes before any interceptor runs. A body the client got wrong is
 * the client's error: this rewrites exactly that answer to `invalid_argument`,
 * in each protocol's shape (Connect unary and streaming, gRPC, gRPC-Web).
 */
const DECODE_FAILURE = "parse binary:";
const GRPC_INTERNAL = "13";
const GRPC_INVALID_ARGUMENT = "3";

export function answerUndecodableBodiesAsInvalidArgument(router: ConnectRouter): void {
  router.handlers.forEach((handler, i) => {
    const wrapped = async (req: UniversalServerRequest) => rewrite(await handler(req));
    router.handlers[i] = Object.assign(wrapped, handler) as UniversalHandler;
  });
}

async function rewrite(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const type = res.header?.get("content-type") ?? "";
  const encoded = Boolean(res.header?.get("content-encoding") || res.header?.get("grpc-encoding"));
  if (!res.body) return res;
  if (type.startsWith("application/grpc-web")) return { ...res, body: mapFrames(res.body, 0x80, grpcWebTrailer) };
  if (type.startsWith("application/grpc")) return { ...res, body: fixTrailerAtEnd(res.body, res.trailer) };
  if (type.startsWith("application/connect+")) return { ...res, body: mapFrames(res.body, 0x02, connectEndStream) };
  if (res.status === 500 && type.startsWith("application/json") && !encoded) return connectUnary(res, res.body);
  return res;
}

async function connectUnary(res: UniversalServerResponse, body: AsyncIterable<Uint8Array>): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const error = parseJson(bytes) as { code?: string; message?: string } | undefined;
  if (error?.code !== "internal" || !error.message?.startsWith(DECODE_FAILURE)) return { ...res, body: once(bytes) };
  const fixed = Buffer.from(JSON.stringify({ ...error, code: "invalid_argument" }));
  res.header?.set("content-length", String(fixed.byteLength));
  return { ...res, status: 400, body: once(fixed) };
}

/** gRPC sends its status in HTTP trailers, which the server fills in once the body has ended. */
async function* fixTrailerAtEnd(body: AsyncIterable<Uint8Array>, trailer: Headers | undefined): AsyncIterable<Uint8Array> {
  yield* body;
  if (trailer?.get("grpc-status") === GRPC_INTERNAL && decodeURIComponent(trailer.get("grpc-message") ?? "").startsWith(DECODE_FAILURE)) {
    trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
  }
}

/** Rewrites the payload of envelopes carrying `flag` (gRPC-Web trailers, Connect end-of-stream); other bytes pass as they are. */
async function* mapFrames(body: AsyncIterable<Uint8Array>, flag: number, map: (payload: Buffer) => Buffer): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    const bytes = Buffer.from(chunk);
    // The servers join each envelope into one chunk: header (flags, 4-byte length) then payload.
    if (bytes.length >= 5 && (bytes[0] as number) & flag && bytes.readUInt32BE(1) === bytes.length - 5) {
      const payload = map(bytes.subarray(5));
      const header = Buffer.alloc(5);
      header[0] = bytes[0] as number;
      header.writeUInt32BE(payload.length, 1);
      yield Buffer.concat([header, payload]);
    } else yield chunk;
  }
}

function grpcWebTrailer(payload: Buffer): Buffer {
  const text = payload.toString("latin1");
  const status = /^grpc-status:\s*(\d+)\s*$/im.exec(text)?.[1];
  const message = decodeURIComponent(/^grpc-message:\s*(.*?)\s*$/im.exec(text)?.[1] ?? "");
  if (status !== GRPC_INTERNAL || !message.startsWith(DECODE_FAILURE)) return payload;
  return Buffer.from(text.replace(/^grpc-status:\s*\d+/im, `grpc-status: ${GRPC_INVALID_ARGUMENT}`), "latin1");
}

function connectEndStream(payload: Buffer): Buffer {
  const end = parseJson(payload) as { error?: { code?: string; message?: string } } | undefined;
  if (end?.error?.code !== "internal" || !end.error.message?.startsWith(DECODE_FAILURE)) return payload;
  return Buffer.from(JSON.stringify({ ...end, error: { ...end.error, code: "invalid_argument" } }));
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
