import type { DescMessage } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { AppError } from "../core/kernel/errors.js";
import { messageInputProblem } from "../core/kernel/exact-input-message.js";
import { type ReceivedBody, receivedBody } from "./request-body.js";

/**
 * No typo is obeyed: every request, in every protocol, is refused with InvalidArgument naming the
 * field when its JSON is not exact (core/kernel/exact-input-json.ts, checked as the body is read:
 * api/request-body.ts) or when the decoded message
 * holds unknown fields, undeclared enum numbers or UNSPECIFIED in a list (core/kernel/exact-input-message.ts).
 */
export const exactInputInterceptor: Interceptor = (next) => async (req) => {
  const received = receivedBody(req.contextValues);
  if (!req.stream) {
    refuseInexact(req.method.input, req.message, received);
    return next(req);
  }
  return next({ ...req, message: checked(req.method.input, req.message, received) });
};

async function* checked<T extends object>(
  desc: DescMessage,
  messages: AsyncIterable<T>,
  received: ReceivedBody | undefined,
): AsyncIterable<T> {
  for await (const message of messages) {
    refuseInexact(desc, message, received);
    yield message;
  }
}

function refuseInexact(desc: DescMessage, message: object, received: ReceivedBody | undefined): void {
  const problem = received?.problem ?? messageInputProblem(desc, message);
  if (problem) throw AppError.invalid(problem.field, problem.message);
}
