import { AppError } from "./errors.js";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export interface PageRequest {
  pageSize: number;
  /** Return rows whose id is greater than this (ids are time-ordered UUIDv7). */
  afterId?: string;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Page tokens are opaque to clients: base64url of the last id of the previous page. */
export function parsePageRequest(pageSize: number, pageToken: string): PageRequest {
  if (pageSize > MAX_PAGE_SIZE) throw AppError.invalid("page_size", `must be at most ${MAX_PAGE_SIZE}`);
  const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize;
  if (pageToken === "") return { pageSize: size };
  const afterId = Buffer.from(pageToken, "base64url").toString("utf8");
  if (!uuidPattern.test(afterId)) throw AppError.invalid("page_token", "is not a token returned by this list");
  return { pageSize: size, afterId };
}

/** Call with pageSize + 1 rows fetched: the extra row only says whether there is a next page. */
export function toPage<T extends { id: string }>(rows: T[], request: PageRequest): { items: T[]; nextPageToken: string } {
  if (rows.length <= request.pageSize) return { items: rows, nextPageToken: "" };
  const items = rows.slice(0, request.pageSize);
  const last = items[items.length - 1] as T;
  return { items, nextPageToken: Buffer.from(last.id, "utf8").toString("base64url") };
}
