/** The API URL this invocation calls through `api()`, for error messages; kept apart so main loads no client code. */
let url: string | undefined;

export const apiUrl = (): string | undefined => url;
export const setApiUrl = (value: string): void => {
  url = value;
};
