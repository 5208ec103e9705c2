/** Temporal header carrying an operation's id from its workflow to each activity it schedules (for their log lines). */
export const OPERATION_ID_HEADER = "axion-operation-id";
