import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type TextMapGetter, trace } from "@opentelemetry/api";
import type { NodeSDK, resources, tracing } from "@opentelemetry/sdk-node";
import { currentLogContext } from "../core/kernel/log.js";

type TemporalTracing = typeof import("@temporalio/interceptors-opentelemetry");

/**
 * OpenTelemetry tracing, on only when an OTLP endpoint is configured (or a test
 * hands in its own span processor): otherwise the SDK is not even loaded, no
 * Temporal interceptor is installed, and the API's tracer is OpenTelemetry's no-op.
 * Spans carry names, ids and outcomes; never request bodies, arguments,
 * scripts or error messages, which could quote a secret.
 */

interface Running {
  sdk: NodeSDK;
  processor: tracing.SpanProcessor;
  resource: resources.Resource;
  /** The Temporal SDK's OpenTelemetry interceptors, loaded with the SDK. */
  temporal: TemporalTracing;
}
let running: Running | undefined;

export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: spans go to `<endpoint>/v1/traces` (OTLP over HTTP, protobuf). */
  endpoint?: string;
  serviceName: string;
  /** Which part of the service this process is (`api`, `worker`, `all`). */
  role: string;
  /** Instead of the OTLP exporter (tests: an in-memory exporter). */
  spanProcessor?: tracing.SpanProcessor;
  /** OTEL_TRACES_SAMPLE_RATIO: the share of traces recorded, decided by trace id (default 1: all). */
  sampleRatio?: number;
}

/** Starts the SDK when there is somewhere to send spans; answers whether it did. Once per process, before the worker and the client exist. */
export async function startTracing(options: TracingOptions): Promise<boolean> {
  if (running) return true;
  if (!options.endpoint && !options.spanProcessor) return false;
  const [{ NodeSDK, resources, tracing }, { OTLPTraceExporter }, temporal] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/exporter-trace-otlp-proto"),
    import("@temporalio/interceptors-opentelemetry"),
  ]);
  const processor =
    options.spanProcessor ??
    new tracing.BatchSpanProcessor(new OTLPTraceExporter({ url: `${options.endpoint?.replace(/\/+$/, "")}/v1/traces` }));
  // Built by hand, not detected: the process detector would record the command line.
  const resource = new resources.Resource({ "service.name": options.serviceName, "axion.role": options.role });
  // The service's own rule decides, whatever a caller's traceparent says: a remote parent's sampled flag is
  // ignored (a caller cannot make the service record traces, nor hide a call from it). By trace id, so every
  // process of the service (API, worker) takes the same traces, and a taken span keeps the caller's trace id.
  const own = new tracing.TraceIdRatioBasedSampler(options.sampleRatio ?? 1);
  const sdk = new NodeSDK({
    sampler: new tracing.ParentBasedSampler({ root: own, remoteParentSampled: own, remoteParentNotSampled: own }),
    resource,
    autoDetectResources: false,
    spanProcessors: [processor],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  running = { sdk, processor, resource, temporal };
  return true;
}

/** With tracing on: where the worker's workflow spans (made in the sandbox, handed out through a sink) go, and the Temporal interceptors. */
export function tracingPipeline(): Omit<Running, "sdk"> | undefined {
  return running;
}

/** Flushes and stops (at shutdown; tests start again afterwards). */
export async function stopTracing(): Promise<void> {
  const current = running;
  running = undefined;
  await current?.sdk.shutdown();
}

const headerGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};

/** A server span per Connect call, child of the caller's `traceparent` when it sends one. */
export const rpcTracingInterceptor: Interceptor = (next) => async (req) => {
  if (!running) return next(req);
  const parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
  const span = trace.getTracer("axion-api").startSpan(
    `${req.service.typeName}/${req.method.name}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "rpc.system": "connect_rpc",
        "rpc.service": req.service.typeName,
        "rpc.method": req.method.name,
        ...(currentLogContext()?.requestId ? { "axion.request_id": currentLogContext()?.requestId } : {}),
      },
    },
    parent,
  );
  const active = trace.setSpan(parent, span);
  try {
    const res = await context.with(active, () => next(req));
    if (!res.stream) {
      end(span);
      return res;
    }
    return { ...res, message: streamInSpan(active, span, res.message) };
  } catch (error) {
    end(span, error);
    throw error;
  }
};

function end(span: Span, error?: unknown): void {
  if (error !== undefined) {
    const code = error instanceof ConnectError ? Code[error.code] : "unknown";
    span.setAttribute("rpc.connect_rpc.error_code", code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }
  span.end();
}

async function* streamInSpan<T>(active: ReturnType<typeof context.active>, span: Span, messages: AsyncIterable<T>): AsyncIterable<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let failure: unknown;
  try {
    for (;;) {
      const next = await context.with(active, () => iterator.next());
      if (next.done) return;
      yield next.value;
    }
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    await iterator.return?.();
    end(span, failure);
  }
}
