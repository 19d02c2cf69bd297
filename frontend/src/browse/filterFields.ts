import type { BrowseTab, Filters } from "./types";

export interface FilterField {
  name: string;
  label: string;
  kind: "id" | "text" | "share" | "select";
  options?: { value: string; label: string }[];
}

const ANY = { value: "", label: "Any" };
const GOLD: FilterField = {
  name: "gold",
  label: "Gold",
  kind: "select",
  options: [ANY, { value: "yes", label: "Gold only" }, { value: "no", label: "Not gold" }],
};

/** The filters each list accepts (the API refuses any other). */
export const FILTER_FIELDS: Record<BrowseTab, FilterField[]> = {
  prompts: [
    { name: "batch", label: "Batch id", kind: "id" },
    { name: "external_id", label: "External id", kind: "text" },
  ],
  comparisons: [
    { name: "batch", label: "Batch id", kind: "id" },
    { name: "annotator", label: "Annotator id", kind: "id" },
    { name: "prompt", label: "Prompt id", kind: "id" },
    {
      name: "status",
      label: "Status",
      kind: "select",
      options: [
        ANY,
        { value: "open", label: "Open" },
        { value: "complete", label: "Complete" },
        { value: "gold", label: "Gold" },
      ],
    },
    GOLD,
    { name: "agreement_min", label: "Agreement from", kind: "share" },
    { name: "agreement_max", label: "Agreement to", kind: "share" },
  ],
  judgments: [
    { name: "batch", label: "Batch id", kind: "id" },
    { name: "annotator", label: "Annotator id", kind: "id" },
    { name: "prompt", label: "Prompt id", kind: "id" },
    { name: "comparison", label: "Comparison id", kind: "id" },
    {
      name: "choice",
      label: "Choice",
      kind: "select",
      options: [
        ANY,
        { value: "A", label: "A" },
        { value: "B", label: "B" },
        { value: "tie", label: "Tie" },
        { value: "both_bad", label: "Both bad" },
      ],
    },
    GOLD,
  ],
};

export function emptyFilters(): Record<BrowseTab, Filters> {
  const empty = (tab: BrowseTab) => Object.fromEntries(FILTER_FIELDS[tab].map((f) => [f.name, ""]));
  return { prompts: empty("prompts"), comparisons: empty("comparisons"), judgments: empty("judgments") };
}
