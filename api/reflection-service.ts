import {
  create,
  createRegistry,
  type DescFile,
  type DescService,
  type MessageInitShape,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import {
  ErrorResponseSchema,
  ExtensionNumberResponseSchema,
  FileDescriptorResponseSchema,
  ListServiceResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponseSchema,
  ServerReflection as ServerReflectionV1,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Answer = Exclude<MessageInitShape<typeof ServerReflectionResponseSchema>["messageResponse"], undefined>;

/** What reflection tells about the services on this port: their files (with every dependency) and symbols. */
interface ReflectionIndex {
  services: string[];
  files: Map<string, DescFile>;
  registry: Registry;
}

function indexOf(services: DescService[]): ReflectionIndex {
  const files = new Map<string, DescFile>();
  const add = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    for (const dependency of file.dependencies) add(dependency);
  };
  for (const service of services) add(service.file);
  return {
    services: services.map((s) => s.typeName).sort(),
    files,
    registry: createRegistry(...files.values()),
  };
}

/** A file and all it imports, each once, as serialized FileDescriptorProtos (clients resolve imports from them). */
function withDependencies(file: DescFile): Answer {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    out.push(toBinary(FileDescriptorProtoSchema, f.proto));
    for (const dependency of f.dependencies) visit(dependency);
  };
  visit(file);
  return { case: "fileDescriptorResponse", value: create(FileDescriptorResponseSchema, { fileDescriptorProto: out }) };
}

function error(code: Code, message: string): Answer {
  return { case: "errorResponse", value: create(ErrorResponseSchema, { errorCode: code, errorMessage: message }) };
}

/** The file defining a symbol: a type, a service, an extension, or a method (`pkg.Service.Method`). */
function fileContaining(index: ReflectionIndex, symbol: string): DescFile | undefined {
  const desc = index.registry.get(symbol);
  if (desc) return desc.file;
  const dot = symbol.lastIndexOf(".");
  const parent = index.registry.getService(symbol.slice(0, dot));
  return parent?.methods.some((m) => m.name === symbol.slice(dot + 1)) ? parent.file : undefined;
}

function answer(index: ReflectionIndex, request: ServerReflectionRequest["messageRequest"]): Answer {
  switch (request.case) {
    case "listServices":
      return {
        case: "listServicesResponse",
        value: create(ListServiceResponseSchema, { service: index.services.map((name) => ({ name })) }),
      };
    case "fileByFilename": {
      const file = index.files.get(request.value);
      return file ? withDependencies(file) : error(Code.NotFound, `file not found: ${request.value.slice(0, 200)}`);
    }
    case "fileContainingSymbol": {
      const file = fileContaining(index, request.value);
      return file ? withDependencies(file) : error(Code.NotFound, `symbol not found: ${request.value.slice(0, 200)}`);
    }
    case "fileContainingExtension": {
      const extendee = index.registry.getMessage(request.value.containingType);
      const extension = extendee && index.registry.getExtensionFor(extendee, request.value.extensionNumber);
      return extension ? withDependencies(extension.file) : error(Code.NotFound, "extension not found");
    }
    case "allExtensionNumbersOfType": {
      const message = index.registry.getMessage(request.value);
      if (!message) return error(Code.NotFound, `type not found: ${request.value.slice(0, 200)}`);
      const numbers: number[] = [];
      for (const desc of index.registry) {
        if (desc.kind === "extension" && desc.extendee.typeName === message.typeName) numbers.push(desc.number);
      }
      return {
        case: "allExtensionNumbersResponse",
        value: create(ExtensionNumberResponseSchema, { baseTypeName: message.typeName, extensionNumber: numbers }),
      };
    }
    default:
      return error(Code.InvalidArgument, "empty reflection request");
  }
}

function reflectionImpl(index: ReflectionIndex) {
  return {
    async *serverReflectionInfo(requests: AsyncIterable<ServerReflectionRequest>) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, messageResponse: answer(index, request.messageRequest) };
      }
    },
  };
}

/**
 * gRPC server reflection (v1 and v1alpha, same answers) over every service routed so far, built from the
 * generated file descriptors, so grpcurl and `buf curl` list and call every RPC without the proto files.
 * Register it last. Like every owner-facing method it needs an owner token: the contracts are no secret
 * (they are in the repository), but an unauthenticated caller gets nothing from this port but /healthz.
 */
export function registerReflection(router: ConnectRouter): void {
  const routed = [...new Set(router.handlers.map((h) => h.service))];
  const index = indexOf([...routed, ServerReflectionV1, ServerReflectionV1alpha]);
  router.service(ServerReflectionV1, reflectionImpl(index));
  // v1alpha's messages have the same fields and numbers as v1's.
  router.service(ServerReflectionV1alpha, reflectionImpl(index) as never);
}
