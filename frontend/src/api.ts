// Small typed fetch client for the Preflab Django API.
//
// - Same-origin session cookies (`credentials: "same-origin"`).
// - JSON in, JSON out.
// - Non-GET requests carry the `csrftoken` cookie as `X-CSRFToken`.
// - Every failure is thrown as an `ApiError` (status 0 / "network_error" when
//   the server could not be reached at all).

export type Role = "annotator" | "project_admin" | "ml_engineer";

export interface User {
  id: number;
  username: string;
  is_superuser: boolean;
  roles: string[];
}

export interface Project {
  id: number;
  name: string;
  description: string;
  role: Role | null;
  created_at: string;
}

export type RationaleMode = "off" | "optional" | "required";

/** GET /api/projects/{id}/ — the project with its labelling scheme. */
export interface ProjectDetail extends Project {
  instructions: string;
  overlap_k: number;
  lease_ttl_seconds: number;
  allow_tie: boolean;
  allow_both_bad: boolean;
  strength_scale: boolean;
  rationale_mode: RationaleMode;
  gold_rate: number;
}

export type MessageRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: MessageRole;
  content: string;
}

/** What the annotator may answer for an item. */
export interface LabelScheme {
  allow_tie: boolean;
  allow_both_bad: boolean;
  strength_scale: boolean;
  rationale_mode: RationaleMode;
}

/** One leased comparison, as served by POST /api/projects/{id}/queue/next/. */
export interface QueueItem {
  assignment_id: number;
  expires_at: string;
  messages: ChatMessage[];
  left: { content: string };
  right: { content: string };
  scheme: LabelScheme;
}

export type Choice = "left" | "right" | "tie" | "both_bad";

/** 4 = significantly better, 3 = better, 2 = slightly better, 1 = negligibly better / unsure. */
export type Strength = 1 | 2 | 3 | 4;

export interface SubmitBody {
  choice: Choice;
  strength: Strength | null;
  rationale: string;
  time_taken_ms: number;
}

export interface Judgment {
  id: number;
  assignment_id: number;
  choice: Choice;
  strength: Strength | null;
  rationale: string;
  time_taken_ms: number | null;
  created_at: string;
}

export interface Progress {
  done_today: number;
  done_total: number;
  available_to_you: number;
  project_comparisons: number;
  project_judgments: number;
  project_judgments_needed: number;
}

/** Krippendorff's alpha with its bootstrap 95% CI; `value` is null (reason "not_enough_data") when undefined. */
export interface Alpha {
  value: number | null;
  low: number | null;
  high: number | null;
  /** Pairable units (comparisons with at least two values). */
  units: number;
  reason: string | null;
}

/** Shares (coverage, agreement, accuracy, left share) are fractions 0…1. */
export interface QualitySummary {
  judgments: number;
  comparisons: number;
  comparisons_complete: number;
  coverage: number;
  annotators: number;
  alpha_nominal: Alpha;
  alpha_ordinal: Alpha;
  percent_agreement: number | null;
  gold_accuracy: number | null;
  gold_judgments: number;
  median_seconds: number | null;
}

export interface BatchQuality {
  batch_id: number;
  name: string;
  judgments: number;
  comparisons: number;
  coverage: number;
  alpha_nominal: Alpha;
  alpha_ordinal: Alpha;
  percent_agreement: number | null;
}

export interface WeekQuality {
  /** The week's Monday, "YYYY-MM-DD". */
  week: string;
  judgments: number;
  alpha_nominal: Alpha;
  alpha_ordinal: Alpha;
  percent_agreement: number | null;
}

export type AnnotatorFlag = "low_gold_accuracy" | "low_consensus_agreement" | "too_fast" | "position_bias";

export interface AnnotatorQuality {
  annotator_id: number;
  username: string;
  judgments: number;
  consensus_agreement: number | null;
  gold_accuracy: number | null;
  gold_judgments: number;
  left_share: number | null;
  position_p_value: number | null;
  median_seconds: number | null;
  excluded: boolean;
  /** Usually AnnotatorFlag values; unknown ones are shown as they come. */
  flags: string[];
}

/** Pairwise Cohen's kappa; `matrix[i][j]` is null below the minimum of common comparisons. */
export interface KappaMatrix {
  annotators: { id: number; username: string }[];
  matrix: (number | null)[][];
  common: number[][];
}

export interface ThroughputDay {
  /** "YYYY-MM-DD" */
  day: string;
  judgments: number;
}

export interface QualityThresholds {
  min_gold_accuracy: number;
  min_consensus_agreement: number;
  min_median_seconds: number;
  max_position_p_value: number;
}

export interface QualityData {
  summary: QualitySummary;
  batches: BatchQuality[];
  weeks: WeekQuality[];
  annotators: AnnotatorQuality[];
  kappa: KappaMatrix;
  throughput: ThroughputDay[];
  thresholds: QualityThresholds;
}

/** GET /api/projects/{id}/quality/ — the cached statistics; `data` is null until first computed. */
export interface QualityReport {
  computed_at: string | null;
  stale: boolean;
  new_judgments: number;
  /** Judgments the snapshot counted that were undone after it was computed. */
  undone_judgments: number;
  data: QualityData | null;
}

/** One exclusion of an annotator from the statistics (and its revocation, if any). */
export interface Exclusion {
  id: number;
  annotator_id: number;
  username: string;
  reason: string;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason: string;
  active: boolean;
}

/** One API token of the signed-in user (GET /api/auth/tokens/); the secret itself is never listed. */
export interface ApiToken {
  id: number;
  name: string;
  /** The first 8 characters of the token, to recognise it. */
  prefix: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

/** POST /api/auth/tokens/ — the new token with its full secret, returned this once only. */
export interface CreatedApiToken extends ApiToken {
  token: string;
}

export interface Paginated<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

export interface ApiErrorBody {
  code: string;
  message: string;
  extra: Record<string, unknown>;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Record<string, unknown>;

  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

export const CSRF_COOKIE_NAME = "csrftoken";
export const CSRF_HEADER_NAME = "X-CSRFToken";

/** Reads a cookie by name from `document.cookie`; null when absent. */
export function getCookie(name: string): string | null {
  if (typeof document === "undefined" || !document.cookie) return null;
  for (const part of document.cookie.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  return null;
}

// Token returned in the body of GET /api/auth/csrf/; used only when the cookie
// cannot be read (e.g. if the backend ever marks it HttpOnly).
let csrfTokenFromBody: string | null = null;

function csrfToken(): string | null {
  return getCookie(CSRF_COOKIE_NAME) ?? csrfTokenFromBody;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function errorFromResponse(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    const text = await response.text();
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (isRecord(body) && typeof body.code === "string") {
    const message =
      typeof body.message === "string" && body.message
        ? body.message
        : response.statusText || `Request failed with status ${response.status}`;
    const extra = isRecord(body.extra) ? body.extra : {};
    return new ApiError(response.status, body.code, message, extra);
  }
  return new ApiError(
    response.status,
    `http_${response.status}`,
    response.statusText || `Request failed with status ${response.status}`,
  );
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

/** Performs one API request and returns the parsed JSON (undefined for 204). */
export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = (options.method ?? "GET").toUpperCase();
  const headers: Record<string, string> = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(method)) {
    const token = csrfToken();
    if (token) headers[CSRF_HEADER_NAME] = token;
  }

  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      signal: options.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "Could not reach the server. Check your connection and try again.");
  }

  if (!response.ok) throw await errorFromResponse(response);
  if (response.status === 204) return undefined as T;

  const text = await response.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(response.status, "invalid_response", "The server sent a response that is not valid JSON.");
  }
}

/** Turns an absolute pagination URL ("next"/"previous") into a same-origin path. */
export function toApiPath(url: string): string {
  const base = typeof window !== "undefined" ? window.location.origin : "http://localhost";
  const parsed = new URL(url, base);
  return parsed.pathname + parsed.search;
}

export const api = {
  /** GET /api/auth/csrf/ — sets the csrftoken cookie; call before logging in. */
  async csrf(): Promise<string> {
    const data = await request<{ csrfToken: string }>("/api/auth/csrf/");
    csrfTokenFromBody = data.csrfToken;
    return data.csrfToken;
  },

  login(username: string, password: string): Promise<User> {
    return request<User>("/api/auth/login/", { method: "POST", body: { username, password } });
  },

  logout(): Promise<void> {
    return request<void>("/api/auth/logout/", { method: "POST" });
  },

  me(signal?: AbortSignal): Promise<User> {
    return request<User>("/api/auth/me/", { signal });
  },

  /** Revokes every API token of the user and ends all their sessions (this one too). */
  logoutAll(): Promise<void> {
    return request<void>("/api/auth/logout-all/", { method: "POST" });
  },

  /** The caller's own API tokens, newest first. */
  async tokens(signal?: AbortSignal): Promise<ApiToken[]> {
    const data = await request<{ results: ApiToken[] }>("/api/auth/tokens/", { signal });
    return data.results;
  },

  /** Creates a token; the response's `token` is the full secret, shown to the user once. */
  createToken(name: string): Promise<CreatedApiToken> {
    return request<CreatedApiToken>("/api/auth/tokens/", { method: "POST", body: { name } });
  },

  revokeToken(tokenId: number): Promise<void> {
    return request<void>(`/api/auth/tokens/${tokenId}/`, { method: "DELETE" });
  },

  projects(path = "/api/projects/", signal?: AbortSignal): Promise<Paginated<Project>> {
    return request<Paginated<Project>>(path, { signal });
  },

  /** Follows "next" links and returns every project the user can see. */
  async allProjects(signal?: AbortSignal): Promise<Project[]> {
    const results: Project[] = [];
    let path: string | null = "/api/projects/";
    for (let page = 0; path && page < 100; page += 1) {
      const data: Paginated<Project> = await api.projects(path, signal);
      results.push(...data.results);
      path = data.next ? toApiPath(data.next) : null;
    }
    return results;
  },

  project(projectId: number, signal?: AbortSignal): Promise<ProjectDetail> {
    return request<ProjectDetail>(`/api/projects/${projectId}/`, { signal });
  },

  /**
   * Leases the next item. Without `exclude` this is the caller's oldest live lease (a
   * refresh shows the same item); `exclude` lists the leases the page already holds.
   */
  async queueNext(projectId: number, exclude?: number[], signal?: AbortSignal): Promise<QueueItem | null> {
    const body = exclude && exclude.length > 0 ? { exclude } : {};
    const data = await request<{ item: QueueItem | null }>(`/api/projects/${projectId}/queue/next/`, {
      method: "POST",
      body,
      signal,
    });
    return data.item;
  },

  /** Idempotent per assignment: a retry returns the judgment already stored. */
  submit(projectId: number, assignmentId: number, body: SubmitBody): Promise<Judgment> {
    return request<Judgment>(`/api/projects/${projectId}/assignments/${assignmentId}/submit/`, {
      method: "POST",
      body,
    });
  },

  skip(projectId: number, assignmentId: number, reason: string): Promise<void> {
    return request<void>(`/api/projects/${projectId}/assignments/${assignmentId}/skip/`, {
      method: "POST",
      body: { reason },
    });
  },

  release(projectId: number, assignmentId: number): Promise<void> {
    return request<void>(`/api/projects/${projectId}/assignments/${assignmentId}/release/`, { method: "POST" });
  },

  progress(projectId: number, signal?: AbortSignal): Promise<Progress> {
    return request<Progress>(`/api/projects/${projectId}/progress/`, { signal });
  },

  /** GET /api/projects/{id}/quality/ (project admins only; 403 otherwise). */
  quality(projectId: number, signal?: AbortSignal): Promise<QualityReport> {
    return request<QualityReport>(`/api/projects/${projectId}/quality/`, { signal });
  },

  /** Queues a recomputation of the statistics (202); poll `quality` until computed_at changes. */
  recomputeQuality(projectId: number): Promise<{ task_id: string }> {
    return request<{ task_id: string }>(`/api/projects/${projectId}/quality/recompute/`, { method: "POST" });
  },

  /** The exclusion audit trail, newest first. */
  async exclusions(projectId: number, signal?: AbortSignal): Promise<Exclusion[]> {
    const data = await request<{ results: Exclusion[] }>(`/api/projects/${projectId}/exclusions/`, { signal });
    return data.results;
  },

  /** 400 "invalid" without a reason; 409 when the annotator is already excluded. */
  excludeAnnotator(projectId: number, annotatorId: number, reason: string): Promise<Exclusion> {
    return request<Exclusion>(`/api/projects/${projectId}/exclusions/`, {
      method: "POST",
      body: { annotator_id: annotatorId, reason },
    });
  },

  revokeExclusion(projectId: number, exclusionId: number, reason: string): Promise<Exclusion> {
    return request<Exclusion>(`/api/projects/${projectId}/exclusions/${exclusionId}/revoke/`, {
      method: "POST",
      body: { reason },
    });
  },
};

export const ROLE_LABELS: Record<Role, string> = {
  annotator: "Annotator",
  project_admin: "Project admin",
  ml_engineer: "ML engineer",
};

export function roleLabel(role: Role | null | undefined): string {
  return role ? ROLE_LABELS[role] ?? role : "—";
}
