import { brotliDecompressSync, gunzipSync } from "node:zlib";
import type { DescMessage } from "@bufbuild/protobuf";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeFromString, codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { binaryInputProblem } from "../core/kernel/exact-input-binary.js";
import { type InputProblem, jsonInputProblem } from "../core/kernel/exact-input-json.js";
import { boundedErrorMessage } from "./errors.js";
import { firstMessageBytes, isJson, type ReceivedBody, recordingBody } from "./request-body.js";

/**
 * The last word on every error answer, which connect-es writes before any interceptor runs when
 * the body does not decode. A body the client got wrong is the client's error: connect-es answers
 * `internal` for a binary body ("parse binary: …"), and both decoders' messages name no request
 * field and embed the value (a 900 KB string comes back whole). Such an answer becomes
 * `invalid_argument` naming the field (read from the body as received); and every error message,
 * whatever produced it, is bounded and escaped (boundedErrorMessage). In each protocol's shape:
 * Connect unary and streaming, gRPC, gRPC-Web.
 */
type Fix = (code: Code, message: string) => { code: Code; message: string };

export function rewriteErrorAnswers(router: ConnectRouter, maxBytes: number): void {
  router.handlers.forEach((handler, i) => {
    const input = handler.method.input;
    const wrapped = async (req: UniversalServerRequest) => {
      const { req: recorded, received } = await recordingBody(req, input, maxBytes);
      const fix: Fix = (code, message) => fixed(code, message, input, received, maxBytes);
      return rewrite(await handler(recorded), fix);
    };
    router.handlers[i] = Object.assign(wrapped, handler) as UniversalHandler;
  });
}

function fixed(code: Code, message: string, input: DescMessage, received: ReceivedBody, maxBytes: number) {
  const binaryFailure = code === Code.Internal && message.startsWith("parse binary:");
  const jsonFailure = code === Code.InvalidArgument && message.startsWith("cannot decode ");
  if (!binaryFailure && !jsonFailure) return { code, message: boundedErrorMessage(message) };
  const problem = decodeProblem(input, received, maxBytes, message);
  return { code: Code.InvalidArgument, message: boundedErrorMessage(`${problem.field}: ${problem.message}`) };
}

function decodeProblem(input: DescMessage, received: ReceivedBody, maxBytes: number, decoderMessage: string): InputProblem {
  const bytes = firstMessageBytes(received, maxBytes);
  if (!isJson(received)) return bytes ? binaryInputProblem(input, bytes) : { field: "request", message: `is not a valid ${input.name}` };
  const problem = bytes && jsonInputProblem(input, Buffer.from(bytes).toString("utf8"));
  if (problem) return problem;
  // A case the reading above does not know: protobuf-es's own message names the field's type and name before the value.
  const field = /^cannot decode field [\w.]+\.(\w+) from JSON/.exec(decoderMessage)?.[1];
  return field ? { field, message: "has a value of the wrong form" } : { field: "request", message: `is not a valid JSON ${input.name}` };
}

async function rewrite(res: UniversalServerResponse, fix: Fix): Promise<UniversalServerResponse> {
  const type = res.header?.get("content-type") ?? "";
  if (type.startsWith("application/grpc")) fixStatusInHeader(res.header, fix);
  if (!res.body) return res;
  if (type.startsWith("application/grpc-web")) return { ...res, body: mapFrames(res.body, 0x80, (p) => grpcWebTrailer(p, fix)) };
  if (type.startsWith("application/grpc")) return { ...res, body: fixTrailerAtEnd(res.body, res.trailer, fix) };
  if (type.startsWith("application/connect+")) return { ...res, body: mapFrames(res.body, 0x02, (p) => connectEndStream(p, fix)) };
  if (res.status >= 400 && type.startsWith("application/json")) return connectUnary(res, res.body, fix);
  return res;
}

async function connectUnary(res: UniversalServerResponse, body: AsyncIterable<Uint8Array>, fix: Fix): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const encoding = res.header?.get("content-encoding");
  const bytes = decompressed(Buffer.concat(chunks), encoding);
  const error = bytes && (parseJson(bytes) as { code?: string; message?: string } | undefined);
  const code = error?.code === undefined ? undefined : codeFromString(error.code);
  if (!error || code === undefined) return { ...res, body: once(Buffer.concat(chunks)) };
  const answer = fix(code, error.message ?? "");
  const text = Buffer.from(JSON.stringify({ ...error, code: codeToString(answer.code), message: answer.message }));
  res.header?.delete("content-encoding");
  res.header?.set("content-length", String(text.byteLength));
  return { ...res, status: codeToHttpStatus(answer.code), body: once(text) };
}

function decompressed(bytes: Buffer, encoding: string | null | undefined): Buffer | undefined {
  try {
    if (!encoding || encoding === "identity") return bytes;
    if (encoding === "gzip") return gunzipSync(bytes);
    if (encoding === "br") return brotliDecompressSync(bytes);
  } catch {
    // An error body this server wrote: it decompresses; if it did not, it is passed on as it is.
  }
  return undefined;
}

/** A gRPC or gRPC-Web answer without messages may carry its status in the headers ("trailers-only"). */
function fixStatusInHeader(header: Headers | undefined, fix: Fix): void {
  const status = header?.get("grpc-status");
  if (!header || status === null || status === undefined || status === "0") return;
  const answer = fix(Number(status) as Code, decodeMessage(header.get("grpc-message") ?? ""));
  header.set("grpc-status", String(answer.code));
  header.set("grpc-message", encodeURIComponent(answer.message));
}

/** gRPC sends its status in HTTP trailers, which the server fills in once the body has ended. */
async function* fixTrailerAtEnd(body: AsyncIterable<Uint8Array>, trailer: Headers | undefined, fix: Fix): AsyncIterable<Uint8Array> {
  yield* body;
  const status = trailer?.get("grpc-status");
  if (!trailer || status === null || status === undefined || status === "0") return;
  const answer = fix(Number(status) as Code, decodeMessage(trailer.get("grpc-message") ?? ""));
  trailer.set("grpc-status", String(answer.code));
  trailer.set("grpc-message", encodeURIComponent(answer.message));
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

function grpcWebTrailer(payload: Buffer, fix: Fix): Buffer {
  const text = payload.toString("latin1");
  const status = /^grpc-status:\s*(\d+)\s*$/im.exec(text)?.[1];
  if (status === undefined || status === "0") return payload;
  const answer = fix(Number(status) as Code, decodeMessage(/^grpc-message:\s*(.*?)\s*$/im.exec(text)?.[1] ?? ""));
  const others = text.split("\r\n").filter((line) => line !== "" && !/^grpc-(status|message):/i.test(line));
  const lines = [`grpc-status: ${answer.code}`, `grpc-message: ${encodeURIComponent(answer.message)}`, ...others];
  return Buffer.from(`${lines.join("\r\n")}\r\n`, "latin1");
}

function connectEndStream(payload: Buffer, fix: Fix): Buffer {
  const end = parseJson(payload) as { error?: { code?: string; message?: string } } | undefined;
  const code = end?.error?.code === undefined ? undefined : codeFromString(end.error.code);
  if (!end?.error || code === undefined) return payload;
  const answer = fix(code, end.error.message ?? "");
  return Buffer.from(JSON.stringify({ ...end, error: { ...end.error, code: codeToString(answer.code), message: answer.message } }));
}

function decodeMessage(encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return encoded;
  }
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
