import type { AdminProject, Invite, Member } from "./types";

export const admin = { id: 1, username: "alice", is_superuser: false, roles: ["project_admin"], can_create_projects: false };
export const creator = { ...admin, can_create_projects: true };

export const adminProject: AdminProject = {
  id: 3,
  name: "Chat quality",
  description: "Compare two chat replies.",
  instructions: "Be kind.",
  role: "project_admin",
  overlap_k: 3,
  lease_ttl_seconds: 600,
  allow_tie: true,
  allow_both_bad: true,
  strength_scale: true,
  rationale_mode: "optional",
  gold_rate: 0,
  min_gold_accuracy: 0.7,
  min_consensus_agreement: 0.6,
  min_median_seconds: 3,
  max_position_p_value: 0.001,
  archived_at: null,
  created_at: "2025-01-02T10:00:00Z",
};

export const members: Member[] = [
  {
    user_id: 1,
    username: "alice",
    email: "alice@example.org",
    role: "project_admin",
    joined_at: "2025-01-02T10:00:00Z",
    judgment_count: 0,
    last_judgment_at: null,
  },
  {
    user_id: 2,
    username: "bob",
    email: "",
    role: "annotator",
    joined_at: "2025-01-03T10:00:00Z",
    judgment_count: 42,
    last_judgment_at: "2025-01-05T12:00:00Z",
  },
];

export const invites: Invite[] = [
  {
    id: 9,
    role: "annotator",
    created_at: "2025-01-04T10:00:00Z",
    created_by: "alice",
    expires_at: "2099-01-11T10:00:00Z",
    used_at: null,
    used_by: null,
    revoked_at: null,
    state: "active",
  },
  {
    id: 8,
    role: "ml_engineer",
    created_at: "2025-01-03T10:00:00Z",
    created_by: "alice",
    expires_at: "2025-01-10T10:00:00Z",
    used_at: "2025-01-04T10:00:00Z",
    used_by: "carol",
    revoked_at: null,
    state: "used",
  },
];
