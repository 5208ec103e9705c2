import { type FormEvent, useId, useRef } from "react";
import type { Cluster } from "../../gen/axion/infrastructure/v1/cluster_service_pb.js";
import type { ServerStatus } from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import { filterableStatuses, shown, statusName } from "./format.js";

export interface Filters {
  clusterId: string;
  status?: ServerStatus;
  selector: string;
}

/** Cluster and status apply at once; the selector when submitted (Enter or Apply). */
export function FleetFilters({
  clusters,
  filters,
  onChange,
  selectorError,
}: {
  clusters: Cluster[];
  filters: Filters;
  onChange: (filters: Filters) => void;
  selectorError?: string;
}) {
  const id = useId();
  const selector = useRef<HTMLInputElement>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onChange({ ...filters, selector: selector.current?.value.trim() ?? "" });
  };
  return (
    <form className="filters" onSubmit={submit} aria-label="Filter servers">
      <div>
        <label htmlFor={`${id}-cluster`}>Cluster</label>
        <select id={`${id}-cluster`} value={filters.clusterId} onChange={(e) => onChange({ ...filters, clusterId: e.target.value })}>
          <option value="">All clusters</option>
          {clusters.map((c) => (
            <option key={c.id} value={c.id}>
              {shown(c.name)}
            </option>
          ))}
        </select>
      </div>
      <div>
        <label htmlFor={`${id}-status`}>Status</label>
        <select
          id={`${id}-status`}
          value={filters.status === undefined ? "" : String(filters.status)}
          onChange={(e) => onChange({ ...filters, status: e.target.value === "" ? undefined : (Number(e.target.value) as ServerStatus) })}
        >
          <option value="">Any status</option>
          {filterableStatuses.map((s) => (
            <option key={s} value={String(s)}>
              {statusName(s)}
            </option>
          ))}
        </select>
      </div>
      <div className="selector">
        <label htmlFor={`${id}-selector`}>Label selector</label>
        <input
          id={`${id}-selector`}
          ref={selector}
          defaultValue={filters.selector}
          placeholder="role=web,tier in (a,b),!legacy"
          spellCheck={false}
          aria-invalid={selectorError ? true : undefined}
          aria-describedby={selectorError ? `${id}-selector-error` : undefined}
        />
        <button type="submit">Apply</button>
        {selectorError ? (
          <p id={`${id}-selector-error`} role="alert" className="error">
            {shown(selectorError)}
          </p>
        ) : null}
      </div>
    </form>
  );
}
