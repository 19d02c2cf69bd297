import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch, type RecordedCall } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { admin, adminProject } from "./testData";

const DETAIL = "GET /api/projects/3/";
const PATCH = "PATCH /api/projects/3/";

describe("ProjectSettingsPage", () => {
  it("sends only the changed settings and previews the instructions live", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me/": { body: admin },
      [DETAIL]: { body: adminProject },
      [PATCH]: (call: RecordedCall) => ({ body: { ...adminProject, ...(call.body as object) } }),
    });
    renderApp("/projects/3/settings");
    const user = userEvent.setup();

    expect(await screen.findByRole("heading", { name: "Settings — Chat quality" })).toBeTruthy();
    const preview = screen.getByRole("region", { name: "Instructions preview" });
    expect(preview.textContent).toContain("Be kind.");
    const instructions = screen.getByLabelText("Instructions (markdown)");
    await user.clear(instructions);
    await user.click(instructions);
    await user.paste("# Rules\n\n- one <script>alert(1)</script>");
    expect(within(preview).getByRole("heading", { name: "Rules" })).toBeTruthy();
    expect(preview.querySelector("script")).toBeNull();

    await user.click(screen.getByLabelText("Allow “tie”"));
    await user.selectOptions(screen.getByLabelText("Rationale"), "required");
    await user.clear(screen.getByLabelText("Gold rate"));
    await user.type(screen.getByLabelText("Gold rate"), "0.1");
    await user.click(screen.getByRole("button", { name: "Save settings" }));

    expect(await screen.findByText("Settings saved.")).toBeTruthy();
    const patch = calls.find((c) => `${c.method} ${c.path}` === PATCH);
    expect(patch?.body).toEqual({
      instructions: "# Rules\n\n- one <script>alert(1)</script>",
      allow_tie: false,
      rationale_mode: "required",
      gold_rate: 0.1,
    });
  }, 20_000);

  it("shows a field message from the server next to the field", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: admin },
      [DETAIL]: { body: adminProject },
      [PATCH]: {
        status: 400,
        body: {
          code: "invalid",
          message: "lease_ttl_seconds: Ensure this value is greater than or equal to 30.",
          extra: { fields: { lease_ttl_seconds: ["Ensure this value is greater than or equal to 30."] } },
        },
      },
    });
    renderApp("/projects/3/settings");
    const user = userEvent.setup();
    const ttl = await screen.findByLabelText("Lease time (seconds)");
    await user.clear(ttl);
    await user.type(ttl, "5");
    await user.click(screen.getByRole("button", { name: "Save settings" }));
    expect(await screen.findByText("Ensure this value is greater than or equal to 30.")).toBeTruthy();
    expect(ttl.getAttribute("aria-invalid")).toBe("true");
  }, 20_000);

  it("archives only after a confirmation, and can bring the project back", async () => {
    const archived = { ...adminProject, archived_at: "2025-02-01T10:00:00Z" };
    const { calls } = mockFetch({
      "GET /api/auth/me/": { body: admin },
      [DETAIL]: { body: adminProject },
      "POST /api/projects/3/archive/": { body: archived },
      "POST /api/projects/3/unarchive/": { body: adminProject },
    });
    renderApp("/projects/3/settings");
    const user = userEvent.setup();

    await user.click(await screen.findByRole("button", { name: "Archive project…" }));
    expect(calls.some((c) => c.path.endsWith("/archive/"))).toBe(false);
    await user.click(screen.getByRole("button", { name: "Cancel" }));
    await user.click(screen.getByRole("button", { name: "Archive project…" }));
    await user.click(screen.getByRole("button", { name: "Yes, archive" }));
    expect(await screen.findByText(/Archived on/)).toBeTruthy();
    expect(calls.filter((c) => c.path === "/api/projects/3/archive/")).toHaveLength(1);

    await user.click(screen.getByRole("button", { name: "Unarchive project" }));
    expect(await screen.findByRole("button", { name: "Archive project…" })).toBeTruthy();
  });

  it("refuses members who are not project admins", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: { ...admin, roles: ["annotator"] } },
      [DETAIL]: { body: { ...adminProject, role: "annotator" } },
    });
    renderApp("/projects/3/settings");
    expect((await screen.findByRole("alert")).textContent).toContain("Only the project’s admins");
    expect(screen.queryByRole("button", { name: "Save settings" })).toBeNull();
  });
});
