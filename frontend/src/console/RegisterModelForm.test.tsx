import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { artifact, consoleRoutes, defaultConfig, round } from "./testData";
import type { ModelInfo, ModelRegistration } from "./types";

const ARTIFACTS = "GET /api/projects/3/artifacts/";
const REGISTER = "POST /api/projects/3/artifacts/";
const STATUS = "GET /api/projects/3/artifact-registrations/9/";

const info: ModelInfo = {
  kind: "policy",
  architecture: "LlamaForCausalLM",
  model_type: "llama",
  parameter_count: 8030261248,
  dtype: "bfloat16",
  dtype_source: "safetensors",
  weights_format: "safetensors",
  num_labels: null,
  ensemble_members: null,
  vocab_size: 128256,
  config_vocab_size: 128256,
  has_chat_template: true,
  has_pad_token: false,
  eos_token: "<|eot_id|>",
  sha256: "f00dfeed",
  size_bytes: 16060522496,
};

function registration(extra: Partial<ModelRegistration> = {}): ModelRegistration {
  return {
    id: 9,
    project_id: 3,
    path: "/models/llama-3-8b-sft",
    kind: "policy",
    name: "sft-v1",
    status: "pending",
    error: "",
    info: {},
    artifact_id: null,
    created_at: "2025-03-02T10:00:00Z",
    finished_at: null,
    ...extra,
  };
}

const registered = artifact(40, { name: "sft-v1", origin: "registered", path: "/models/llama-3-8b-sft", model_info: info });

describe("RegisterModelForm", () => {
  it("registers a directory and follows it from pending to registered", async () => {
    const { calls } = mockFetch({
      ...consoleRoutes,
      [ARTIFACTS]: [{ body: { results: [artifact(1)] } }, { body: { results: [artifact(1), registered] } }],
      [REGISTER]: { status: 202, body: registration() },
      [STATUS]: [
        { body: registration() },
        { body: registration({ status: "registered", artifact_id: 40, info, finished_at: "2025-03-02T10:01:00Z" }) },
      ],
      "GET /api/projects/3/artifacts/40/lineage/": {
        body: { artifact: registered, ancestors: [], run: null, dataset_export: null, judgments: null, round: null },
      },
    });
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=models");
    await screen.findByRole("table", { name: "Models" });
    await u.click(screen.getByRole("button", { name: "Register a model" }));
    const form = screen.getByTestId("register-model-form");

    await u.type(within(form).getByLabelText("Directory path"), "  /models/llama-3-8b-sft ");
    await u.selectOptions(within(form).getByLabelText("Kind"), "policy");
    await u.type(within(form).getByLabelText("Name (optional)"), "sft-v1");
    await u.click(within(form).getByRole("button", { name: "Register" }));

    const progress = await within(form).findByTestId("registration-progress");
    expect(progress.textContent).toContain("pending");
    expect(progress.textContent).toContain("validating");
    const post = calls.find((c) => `${c.method} ${c.path}` === REGISTER)!;
    expect(post.body).toEqual({ path: "/models/llama-3-8b-sft", kind: "policy", name: "sft-v1" });

    await waitFor(() => expect(progress.textContent).toContain("registered as"), { timeout: 5000 });
    expect(within(progress).getByRole("link", { name: "Model #40" }).getAttribute("href")).toBe("/projects/3/ml?tab=models&model=40");
    // the list is reloaded with the new model, marked as registered
    const row = await screen.findByTestId("model-row-40");
    expect(within(row).getByText("· registered")).toBeTruthy();

    await u.click(within(row).getByRole("link", { name: "sft-v1" }));
    const recorded = await screen.findByTestId("recorded-info");
    expect(recorded.textContent).toContain("LlamaForCausalLM");
    expect(recorded.textContent).toContain("bfloat16 (from safetensors)");
    expect(recorded.textContent).toContain("no (pads with EOS)");
    expect(recorded.textContent).toContain("<|eot_id|>");
  }, 10000);

  it("shows a failed validation with its reason", async () => {
    mockFetch({
      ...consoleRoutes,
      [ARTIFACTS]: { body: { results: [] } },
      [REGISTER]: { status: 202, body: registration({ kind: "reward" }) },
      [STATUS]: {
        body: registration({
          kind: "reward",
          status: "failed",
          error: "a reward model must be a sequence classifier with one label, but the config has architectures ['LlamaForCausalLM']",
        }),
      },
    });
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=models");
    await u.click(await screen.findByRole("button", { name: "Register a model" }));
    const form = screen.getByTestId("register-model-form");
    await u.type(within(form).getByLabelText("Directory path"), "/models/llama-3-8b-sft");
    await u.selectOptions(within(form).getByLabelText("Kind"), "reward");
    await u.click(within(form).getByRole("button", { name: "Register" }));

    const alert = await within(form).findByRole("alert");
    expect(alert.textContent).toContain("a reward model must be a sequence classifier with one label");
    expect(within(form).getByTestId("registration-progress").textContent).toContain("failed");
    expect(screen.queryByTestId("model-row-40")).toBeNull();
  });

  it("refuses a relative path before posting and shows the server's reason for a bad one", async () => {
    const { calls } = mockFetch({
      ...consoleRoutes,
      [ARTIFACTS]: { body: { results: [] } },
      [REGISTER]: {
        status: 400,
        body: {
          code: "invalid_path",
          message: "/etc (real path /etc) is outside the allowed model roots (/models).",
          extra: { fields: { path: "outside the model roots" } },
        },
      },
    });
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=models");
    await u.click(await screen.findByRole("button", { name: "Register a model" }));
    const form = screen.getByTestId("register-model-form");
    const pathInput = within(form).getByLabelText("Directory path");

    await u.type(pathInput, "models/sft");
    await u.click(within(form).getByRole("button", { name: "Register" }));
    expect(pathInput.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(pathInput.getAttribute("aria-describedby")!)!.textContent).toBe(
      "The path must be absolute (start with /).",
    );
    expect(calls.some((c) => c.method === "POST")).toBe(false);

    await u.clear(pathInput);
    await u.type(pathInput, "/etc");
    await u.click(within(form).getByRole("button", { name: "Register" }));
    const alert = await within(form).findByRole("alert");
    expect(alert.textContent).toContain("outside the allowed model roots");
    expect(document.getElementById(pathInput.getAttribute("aria-describedby")!)!.textContent).toBe("outside the model roots");
    const post = calls.find((c) => `${c.method} ${c.path}` === REGISTER)!;
    expect(post.body).toEqual({ path: "/etc", kind: "policy" });
    expect(screen.queryByTestId("registration-progress")).toBeNull();
  });

  it("offers a registered policy as the base policy of a new round", async () => {
    const { calls } = mockFetch({
      ...consoleRoutes,
      "GET /api/projects/3/rounds/": { body: { results: [] } },
      "GET /api/projects/3/rounds/defaults/": { body: { base_policy: null, config: defaultConfig } },
      [ARTIFACTS]: { body: { results: [artifact(1, { name: "tiny-gpt2" }), registered] } },
      "POST /api/projects/3/rounds/": { status: 201, body: round(1, { base_policy_id: 40 }) },
      "GET /api/projects/3/rounds/1/": { body: round(1, { base_policy_id: 40 }) },
    });
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=rounds");
    await u.click(await screen.findByRole("button", { name: "Start a round" }));
    const form = await screen.findByTestId("start-round-form");
    const base = within(form).getByLabelText("Base policy");
    await waitFor(() => expect(within(base).getAllByRole("option").map((o) => o.textContent)).toContain("sft-v1 (#40)"));
    await u.selectOptions(base, "40");
    await u.click(within(form).getByRole("button", { name: "Start" }));
    await waitFor(() => expect(calls.some((c) => c.method === "POST")).toBe(true));
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.body).toMatchObject({ base_policy: 40 });
  });
});
