// The data browser's endpoints, on the shared fetch client (errors thrown as ApiError).

import { request } from "../api";
import type { BrowsePage, BrowseTab, ComparisonHistory, ComparisonRow, Filters, JudgmentRow, PromptRow } from "./types";

export const PAGE_SIZE = 50;

/** The query string of a list request: the filters that are set, the cursor, the page size. */
export function browseQuery(filters: Filters, cursor: string | null, limit: number = PAGE_SIZE): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    const trimmed = value.trim();
    if (trimmed !== "") params.set(name, trimmed);
  }
  if (cursor) params.set("cursor", cursor);
  params.set("limit", String(limit));
  return params.toString();
}

export interface RowsOf {
  prompts: PromptRow;
  comparisons: ComparisonRow;
  judgments: JudgmentRow;
}

export const browseApi = {
  list<K extends BrowseTab>(
    projectId: number,
    tab: K,
    filters: Filters,
    cursor: string | null,
    signal?: AbortSignal,
  ): Promise<BrowsePage<RowsOf[K]>> {
    return request<BrowsePage<RowsOf[K]>>(`/api/projects/${projectId}/data/${tab}/?${browseQuery(filters, cursor)}`, {
      signal,
    });
  },

  comparison(projectId: number, comparisonId: number, signal?: AbortSignal): Promise<ComparisonHistory> {
    return request<ComparisonHistory>(`/api/projects/${projectId}/data/comparisons/${comparisonId}/`, { signal });
  },
};
