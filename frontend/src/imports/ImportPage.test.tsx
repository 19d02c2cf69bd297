import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ProjectDetail } from "../api";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { acceptedFile } from "./ImportPage";
import type { ImportJob } from "./types";

const admin = { id: 2, username: "padmin", is_superuser: false, roles: ["project_admin"] };
const project: ProjectDetail = {
  id: 3,
  name: "Helpfulness",
  description: "",
  instructions: "",
  role: "project_admin",
  overlap_k: 3,
  lease_ttl_seconds: 600,
  allow_tie: true,
  allow_both_bad: true,
  strength_scale: true,
  rationale_mode: "optional",
  gold_rate: 0,
  created_at: "2025-01-02T10:00:00Z",
};
const LIST = "GET /api/projects/3/import-jobs/";

function job(id: number, fields: Partial<ImportJob> = {}): ImportJob {
  return {
    id,
    project_id: 3,
    status: "succeeded",
    progress: 1,
    original_name: "pairs.jsonl",
    size_bytes: 2048,
    bytes_read: 2048,
    lines_read: 20,
    options: { pairing: "all_pairs", pairs_per_prompt: 3, skip_bad_lines: false, batch_name: "", seed: 0 },
    records_imported: 20,
    prompts_created: 20,
    responses_created: 40,
    comparisons_created: 20,
    comparisons_existing: 0,
    bad_line_count: 0,
    bad_lines: [],
    batch_id: 11,
    error: "",
    cancel_requested: false,
    created_by: "padmin",
    created_at: "2025-03-01T10:00:00Z",
    started_at: "2025-03-01T10:00:00Z",
    finished_at: "2025-03-01T10:00:01Z",
    bad_lines_url: `/api/projects/3/import-jobs/${id}/bad-lines`,
    ...fields,
  };
}

/** XMLHttpRequest as the upload sees it; the test sends progress and the answer. */
class FakeXhr {
  static sent: FakeXhr[] = [];
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: FormData | null = null;
  status = 0;
  responseText = "";
  withCredentials = false;
  upload: { onprogress: ((event: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: FormData) {
    this.body = body;
    FakeXhr.sent.push(this);
  }
  abort() {
    this.onabort?.();
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ lengthComputable: true, loaded, total } as ProgressEvent);
  }
  respond(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

const base = { "GET /api/auth/me/": { body: admin }, "GET /api/projects/3/": { body: project } };

function file(name: string, text = '{"prompt": "q", "response_a": "a", "response_b": "b"}\n') {
  return new File([text], name, { type: "application/json" });
}

async function openPage() {
  renderApp("/projects/3/import");
  await screen.findByRole("heading", { name: "Import comparisons: Helpfulness" });
}

async function lastUpload(): Promise<FakeXhr> {
  await waitFor(() => expect(FakeXhr.sent.length).toBeGreaterThan(0));
  return FakeXhr.sent[FakeXhr.sent.length - 1]!;
}

beforeEach(() => {
  FakeXhr.sent = [];
  vi.stubGlobal("XMLHttpRequest", FakeXhr);
});

afterEach(() => {
  vi.useRealTimers();
});

describe("ImportPage", () => {
  it("uploads the file with its options and the CSRF header, shows the upload progress, then follows the job to its counts", async () => {
    document.cookie = "csrftoken=tok-123";
    const queued = job(5, { status: "queued", progress: 0, bytes_read: 0, comparisons_created: 0, finished_at: null });
    const { calls } = mockFetch({
      ...base,
      [LIST]: [{ body: { results: [] } }, { body: { results: [job(5)] } }],
      "GET /api/projects/3/import-jobs/5/": [
        { body: job(5, { status: "running", progress: 0.4, bytes_read: 819, comparisons_created: 0, finished_at: null }) },
        { body: job(5, { comparisons_created: 7000, prompts_created: 7000 }) },
      ],
    });
    const user = userEvent.setup();
    await openPage();

    await user.upload(screen.getByLabelText("Import file"), file("pairs.jsonl"));
    expect(screen.getByText(/pairs\.jsonl \(/)).toBeTruthy();
    await user.selectOptions(screen.getByLabelText("Pairing"), "random_pairs");
    await user.clear(screen.getByLabelText("Pairs per prompt"));
    await user.type(screen.getByLabelText("Pairs per prompt"), "2");
    await user.type(screen.getByLabelText("Batch name"), "Round 4");
    await user.click(screen.getByRole("checkbox", { name: /Skip bad lines/ }));
    await user.click(screen.getByRole("button", { name: "Upload and import" }));

    const xhr = await lastUpload();
    expect([xhr.method, xhr.url]).toEqual(["POST", "/api/projects/3/import-jobs/"]);
    expect(xhr.headers["X-CSRFToken"]).toBe("tok-123");
    expect(xhr.body?.get("pairing")).toBe("random_pairs");
    expect(xhr.body?.get("pairs_per_prompt")).toBe("2");
    expect(xhr.body?.get("skip_bad_lines")).toBe("true");
    expect(xhr.body?.get("batch_name")).toBe("Round 4");
    expect((xhr.body?.get("file") as File).name).toBe("pairs.jsonl");

    xhr.progress(512, 1024);
    const uploadBar = await screen.findByRole("progressbar", { name: "Upload progress" });
    await waitFor(() => expect(uploadBar.getAttribute("value")).toBe("0.5"));
    expect(screen.getByText("Uploading… 50%")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Uploading…" })).toHaveProperty("disabled", true);

    xhr.respond(202, queued);
    const importBar = await screen.findByRole("progressbar", { name: "Import progress" });
    expect(importBar.getAttribute("value")).toBe("0.4");
    expect(screen.getByText("Importing… 40%")).toBeTruthy();
    expect(screen.queryByRole("progressbar", { name: "Upload progress" })).toBeNull();

    await screen.findByText("Imported 7,000 comparisons into batch #11.", undefined, { timeout: 3000 });
    const list = screen.getByLabelText("Import counts");
    expect(within(list).getByText("Comparisons created").nextSibling?.textContent).toBe("7,000");
    expect(screen.queryByRole("progressbar", { name: "Import progress" })).toBeNull();
    await waitFor(() => expect(calls.filter((c) => c.path === "/api/projects/3/import-jobs/").length).toBe(2));
    const history = await screen.findByRole("table", { name: "Import jobs" });
    expect(within(history).getByText("Import #5")).toBeTruthy();
  });

  it("shows a failed import's bad lines with their line numbers and a download link", async () => {
    const failed = job(6, {
      status: "failed",
      progress: 0.5,
      comparisons_created: 0,
      batch_id: null,
      error: "1 bad line(s); nothing was imported (first: line 2: invalid JSON: Expecting value (column 1)).",
      bad_line_count: 1,
      bad_lines: [{ line: 2, message: "invalid JSON: Expecting value (column 1)" }],
    });
    mockFetch({ ...base, [LIST]: { body: { results: [] } }, "GET /api/projects/3/import-jobs/6/": { body: failed } });
    const user = userEvent.setup();
    await openPage();
    await user.upload(screen.getByLabelText("Import file"), file("pairs.json"));
    await user.click(screen.getByRole("button", { name: "Upload and import" }));
    (await lastUpload()).respond(201, failed);

    const table = await screen.findByRole("table", { name: "Bad lines" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => within(r).getAllByRole("cell").map((c) => c.textContent))).toEqual([
      ["2", "invalid JSON: Expecting value (column 1)"],
    ]);
    expect(screen.getByRole("alert").textContent).toContain("line 2");
    expect(screen.getByRole("link", { name: "Download bad lines" }).getAttribute("href")).toBe(
      "/api/projects/3/import-jobs/6/bad-lines",
    );
    expect(screen.getByRole("link", { name: "(CSV)" }).getAttribute("href")).toBe("/api/projects/3/import-jobs/6/bad-lines?as=csv");
    expect(screen.queryByRole("button", { name: "Cancel" })).toBeNull();
  });

  it("cancels a running import", async () => {
    const running = job(7, { status: "running", progress: 0.2, comparisons_created: 0, finished_at: null });
    const { calls } = mockFetch({
      ...base,
      [LIST]: { body: { results: [running] } },
      "GET /api/projects/3/import-jobs/7/": { body: running },
      "POST /api/projects/3/import-jobs/7/cancel/": {
        body: job(7, { status: "cancelled", cancel_requested: true, comparisons_created: 0, error: "Cancelled; nothing was imported." }),
      },
    });
    const user = userEvent.setup();
    await openPage();
    const history = await screen.findByRole("table", { name: "Import jobs" });
    await user.click(within(history).getByRole("button", { name: "Show" }));
    await screen.findByRole("progressbar", { name: "Import progress" });
    await user.click(screen.getByRole("button", { name: "Cancel" }));

    await screen.findByText("Cancelled; nothing was imported.");
    expect(screen.queryByRole("progressbar", { name: "Import progress" })).toBeNull();
    const cancel = calls.filter((c) => c.method === "POST");
    expect(cancel.map((c) => c.path)).toEqual(["/api/projects/3/import-jobs/7/cancel/"]);
    expect(within(screen.getByRole("region", { name: "Import job 7" })).getByText("cancelled")).toBeTruthy();
  });

  it("refuses a dropped file that is not .jsonl or .json, and takes a dropped .jsonl", async () => {
    mockFetch({ ...base, [LIST]: { body: { results: [] } } });
    const user = userEvent.setup();
    await openPage();
    const zone = screen.getByTestId("drop-zone");
    fireEvent.drop(zone, { dataTransfer: { files: [file("table.csv")] } });
    expect(screen.getByRole("alert").textContent).toBe("table.csv is not a .jsonl or .json file.");
    await user.click(screen.getByRole("button", { name: "Upload and import" }));
    expect(screen.getByRole("alert").textContent).toBe("Choose a .jsonl or .json file first.");
    expect(FakeXhr.sent).toEqual([]);

    fireEvent.drop(zone, { dataTransfer: { files: [file("good.jsonl")] } });
    expect(screen.queryByRole("alert")).toBeNull();
    expect(screen.getByText(/good\.jsonl \(/)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Upload and import" }));
    expect((await lastUpload()).body?.get("pairing")).toBe("all_pairs");
  });

  it("shows the server's message when it refuses the upload", async () => {
    mockFetch({ ...base, [LIST]: { body: { results: [] } } });
    const user = userEvent.setup();
    await openPage();
    await user.upload(screen.getByLabelText("Import file"), file("huge.jsonl"));
    await user.click(screen.getByRole("button", { name: "Upload and import" }));
    (await lastUpload()).respond(413, {
      code: "upload_too_large",
      message: "The file is 3000000000 bytes; the limit is 2147483648.",
      extra: { limit_bytes: 2147483648 },
    });
    expect((await screen.findByRole("alert")).textContent).toBe("The file is 3000000000 bytes; the limit is 2147483648.");
    expect(screen.getByRole("button", { name: "Upload and import" })).toHaveProperty("disabled", false);
  });

  it("tells a member without the admin role that importing is for admins", async () => {
    mockFetch({
      ...base,
      [LIST]: { status: 403, body: { code: "permission_denied", message: "You do not have the role.", extra: {} } },
    });
    await openPage();
    expect((await screen.findByRole("alert")).textContent).toBe("You need to be an admin of this project to import comparisons.");
    expect(screen.queryByRole("button", { name: "Upload and import" })).toBeNull();
  });

  it("accepts only .jsonl and .json names", () => {
    expect(["a.jsonl", "B.JSON", "x.csv", "jsonl", "a.json.gz"].map(acceptedFile)).toEqual([true, true, false, false, false]);
  });
});
