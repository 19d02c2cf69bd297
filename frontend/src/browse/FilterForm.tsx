import { useEffect, useState, type FormEvent } from "react";
import type { FilterField } from "./filterFields";
import type { Filters } from "./types";

/** The filters of one list; "Apply" hands the typed values over (the API validates them). */
export function FilterForm({
  fields,
  applied,
  onApply,
}: {
  fields: FilterField[];
  applied: Filters;
  onApply: (filters: Filters) => void;
}) {
  const [draft, setDraft] = useState<Filters>(applied);
  useEffect(() => setDraft(applied), [applied]);

  function submit(event: FormEvent) {
    event.preventDefault();
    onApply(draft);
  }

  function clear() {
    const cleared = Object.fromEntries(fields.map((f) => [f.name, ""]));
    setDraft(cleared);
    onApply(cleared);
  }

  return (
    <form className="browse-filters" aria-label="Filters" onSubmit={submit} style={{ display: "flex", flexWrap: "wrap", gap: "0.75rem", alignItems: "end", marginBottom: "1rem" }}>
      {fields.map((field) => {
        const id = `filter-${field.name}`;
        const value = draft[field.name] ?? "";
        const set = (v: string) => setDraft((d) => ({ ...d, [field.name]: v }));
        return (
          <label key={field.name} htmlFor={id} style={{ display: "flex", flexDirection: "column", gap: "0.2rem" }}>
            <span className="muted">{field.label}</span>
            {field.kind === "select" ? (
              <select id={id} value={value} onChange={(e) => set(e.target.value)}>
                {field.options?.map((o) => (
                  <option key={o.value} value={o.value}>
                    {o.label}
                  </option>
                ))}
              </select>
            ) : (
              <input
                id={id}
                value={value}
                onChange={(e) => set(e.target.value)}
                inputMode={field.kind === "text" ? "text" : "decimal"}
                placeholder={field.kind === "share" ? "0 … 1" : ""}
                size={field.kind === "text" ? 16 : 8}
              />
            )}
          </label>
        );
      })}
      <button type="submit" className="button">
        Apply
      </button>
      <button type="button" className="button button-secondary" onClick={clear}>
        Clear
      </button>
    </form>
  );
}
