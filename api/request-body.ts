import { brotliDecompressSync, gunzipSync } from "node:zlib";
import type { DescMessage } from "@bufbuild/protobuf";
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import { type InputProblem, jsonInputProblem } from "../core/kernel/exact-input-json.js";

/**
 * The body of a request as it arrived, kept beside the router's own reading of it: the decoder
 * reads numbers leniently and names no field when it fails, so the exact-input checks read the
 * bytes themselves. The chunks are the router's own (no copy) until the request ends.
 */
export interface ReceivedBody {
  contentType: string;
  header: Headers;
  chunks: Uint8Array[];
  /** What is wrong with a JSON body (core/kernel/exact-input-json.ts); the router then decodes `{}` instead, and the interceptor refuses. */
  problem?: InputProblem;
}

const receivedBodyKey = createContextKey<ReceivedBody | undefined>(undefined, { description: "the request body as received" });

/**
 * `req` with its body recorded as it is read; the record is in its context values. A JSON body is
 * read whole and checked before the router decodes it: protobuf-es would decode "0x16" as 22, and
 * its refusals embed the value (a lone surrogate in one makes connect-es fail to write a gRPC
 * status at all). A refused body is replaced by `{}`, which decodes; the interceptor refuses.
 */
export async function recordingBody(
  req: UniversalServerRequest,
  input: DescMessage,
  maxBytes: number,
): Promise<{ req: UniversalServerRequest; received: ReceivedBody }> {
  const received: ReceivedBody = { contentType: req.header.get("content-type") ?? "", header: req.header, chunks: [] };
  const body = req.body;
  if (typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) return { req, received };
  const contextValues = req.contextValues ?? createContextValues();
  contextValues.set(receivedBodyKey, received);
  const chunks = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  if (!isJson(received)) {
    async function* recorded(): AsyncIterable<Uint8Array> {
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
        received.chunks.push(next.value);
        yield next.value;
      }
    }
    return { req: { ...req, contextValues, body: recorded() }, received };
  }
  let size = 0;
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
    received.chunks.push(next.value);
    size += next.value.length;
    if (size > maxBytes + 5) {
      // Over the limit: the router refuses it by its size.
      async function* rest(): AsyncIterable<Uint8Array> {
        yield* received.chunks;
        for (let more = await chunks.next(); !more.done; more = await chunks.next()) yield more.value;
      }
      return { req: { ...req, contextValues, body: rest() }, received };
    }
  }
  const bytes = firstMessageBytes(received, maxBytes);
  received.problem = bytes && jsonInputProblem(input, Buffer.from(bytes).toString("utf8"));
  if (!received.problem) return { req: { ...req, contextValues, body: replay(received.chunks) }, received };
  const empty = Buffer.from("{}");
  if (isEnveloped(received))
    return { req: { ...req, contextValues, body: replay([Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), empty])]) }, received };
  const header = new Headers(req.header);
  header.delete("content-encoding");
  header.set("content-length", String(empty.length));
  return { req: { ...req, header, contextValues, body: replay([empty]) }, received };
}

async function* replay(chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  yield* chunks;
}

export const receivedBody = (values: ContextValues): ReceivedBody | undefined => values.get(receivedBodyKey);

export const isJson = (received: ReceivedBody) => /^application\/(grpc-web\+|grpc\+|connect\+)?json/.test(received.contentType);
const isEnveloped = (received: ReceivedBody) => /^application\/(grpc|connect\+)/.test(received.contentType);

/** The first request message's bytes (out of its envelope, decompressed), or undefined when they cannot be had within `maxBytes`. */
export function firstMessageBytes(received: ReceivedBody, maxBytes: number): Uint8Array | undefined {
  const body = Buffer.concat(received.chunks);
  const header = received.header;
  if (!isEnveloped(received)) return decompress(body, header.get("content-encoding"), maxBytes);
  if (body.length < 5) return undefined;
  const length = body.readUInt32BE(1);
  const payload = body.subarray(5, 5 + length);
  if (((body[0] as number) & 0x01) === 0) return payload;
  return decompress(payload, header.get("connect-content-encoding") ?? header.get("grpc-encoding"), maxBytes);
}

function decompress(bytes: Buffer, encoding: string | null, maxBytes: number): Uint8Array | undefined {
  try {
    if (!encoding || encoding === "identity") return bytes;
    if (encoding === "gzip") return gunzipSync(bytes, { maxOutputLength: maxBytes });
    if (encoding === "br") return brotliDecompressSync(bytes, { maxOutputLength: maxBytes });
  } catch {
    // Not decompressible within the limit: the router has answered that already.
  }
  return undefined;
}
