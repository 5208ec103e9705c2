import type { WorkflowInterceptorsFactory } from "@temporalio/workflow";

/**
 * Temporal's time-skipping test server has no operator service, so the custom search attributes
 * cannot be registered on it: the fast lane's worker starts children and continues as new without them. (The real-stack
 * tests check them on the dev server.)
 */
export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      startChildWorkflowExecution(input, next) {
        const { typedSearchAttributes: _t, searchAttributes: _s, ...options } = input.options;
        return next({ ...input, options });
      },
      continueAsNew(input, next) {
        const { typedSearchAttributes: _t, searchAttributes: _s, ...options } = input.options;
        return next({ ...input, options });
      },
    },
  ],
});
