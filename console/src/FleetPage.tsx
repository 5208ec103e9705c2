import { ConnectError } from "@connectrpc/connect";
import { useInfiniteQuery, useQuery } from "@connectrpc/connect-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { ClusterService } from "../../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { ServerService } from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import { type Filters, FleetFilters } from "./FleetFilters.js";
import { ServerRow } from "./ServerRow.js";

/** Small enough for a quick first render (bench/console.ts); further pages are fetched as the list scrolls towards them. */
const PAGE_SIZE = 200;
/** Live without a reload: every loaded page is fetched again this often. */
const REFRESH_MS = 10_000;
const ROW_HEIGHT = 44;
const COLUMNS = ["Name", "Cluster", "Labels", "Status", "Agent", "Heartbeat", "CPU", "Memory", "Disk"];

export function FleetPage() {
  const [filters, setFilters] = useState<Filters>({ clusterId: "", selector: "" });
  const clusters = useQuery(ClusterService.method.listClusters, { pageSize: 500 }, { refetchInterval: REFRESH_MS * 6 });
  const clusterNames = useMemo(() => new Map((clusters.data?.clusters ?? []).map((c) => [c.id, c.name])), [clusters.data]);

  const servers = useInfiniteQuery(
    ServerService.method.listServers,
    {
      pageSize: PAGE_SIZE,
      pageToken: "",
      clusterId: filters.clusterId,
      statuses: filters.status === undefined ? [] : [filters.status],
      selector: filters.selector,
    },
    {
      pageParamKey: "pageToken",
      getNextPageParam: (page) => page.nextPageToken || undefined,
      refetchInterval: REFRESH_MS,
      placeholderData: (previous) => previous,
    },
  );
  const rows = useMemo(() => servers.data?.pages.flatMap((p) => p.servers) ?? [], [servers.data]);
  const error = servers.error ? ConnectError.from(servers.error) : undefined;
  const complete = servers.data !== undefined && !servers.hasNextPage;

  const scroller = useRef<HTMLElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
  });
  const items = virtualizer.getVirtualItems();
  const lastShown = items.at(-1)?.index ?? 0;
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = servers;
  useEffect(() => {
    if (hasNextPage && !isFetchingNextPage && lastShown >= rows.length - 100) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage, lastShown, rows.length]);

  const totalSize = virtualizer.getTotalSize();
  const body = useRef<HTMLTableSectionElement>(null);
  // Through the CSSOM: the CSP allows no style attribute.
  useLayoutEffect(() => {
    if (body.current) body.current.style.height = `${totalSize}px`;
  }, [totalSize]);

  return (
    <main className="fleet">
      <h2>Servers</h2>
      <FleetFilters clusters={clusters.data?.clusters ?? []} filters={filters} onChange={setFilters} selectorError={error?.rawMessage} />
      <p className="count" role="status" aria-live="polite">
        {servers.isPending ? "Loading servers…" : `${rows.length}${complete ? "" : "+"} server${rows.length === 1 ? "" : "s"}`}
      </p>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: the scrolling region must take the keyboard (arrows, Page Down, End) */}
      <section ref={scroller} className="scroller" tabIndex={0} aria-label="Server rows">
        <table aria-label="Servers" aria-rowcount={complete ? rows.length + 1 : -1}>
          <thead>
            <tr className="row" aria-rowindex={1}>
              {COLUMNS.map((c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody ref={body}>
            {items.map((item) => {
              const server = rows[item.index];
              if (!server) return null;
              return (
                <tr
                  key={server.id}
                  className="row"
                  aria-rowindex={item.index + 2}
                  ref={(el) => {
                    if (el) el.style.transform = `translateY(${item.start}px)`;
                  }}
                >
                  <ServerRow server={server} clusterName={clusterNames.get(server.clusterId) ?? ""} />
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
    </main>
  );
}
