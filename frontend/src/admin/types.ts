// Types and requests of the project administration pages (hand-written, mirroring
// annotation/admin_api.py and the project endpoints).

import { request, type ProjectDetail, type Role, type User } from "../api";

export const ROLES: { value: Role; label: string }[] = [
  { value: "annotator", label: "Annotator" },
  { value: "project_admin", label: "Project admin" },
  { value: "ml_engineer", label: "ML engineer" },
];

/** GET /api/auth/me/ also says whether the user may create projects. */
export type MeWithCreate = User & { can_create_projects?: boolean };

export function canCreateProjects(user: User): boolean {
  return Boolean((user as MeWithCreate).can_create_projects) || user.is_superuser;
}

/** GET /api/projects/{id}/ as project admins see it (settings + archive state). */
export interface AdminProject extends ProjectDetail {
  min_gold_accuracy: number;
  min_consensus_agreement: number;
  min_median_seconds: number;
  max_position_p_value: number;
  archived_at: string | null;
}

/** The editable settings (PATCH /api/projects/{id}/, POST /api/projects/). */
export type ProjectSettings = Pick<
  AdminProject,
  | "name"
  | "description"
  | "instructions"
  | "overlap_k"
  | "lease_ttl_seconds"
  | "allow_tie"
  | "allow_both_bad"
  | "strength_scale"
  | "rationale_mode"
  | "gold_rate"
  | "min_gold_accuracy"
  | "min_consensus_agreement"
  | "min_median_seconds"
  | "max_position_p_value"
>;

export const DEFAULT_SETTINGS: ProjectSettings = {
  name: "",
  description: "",
  instructions: "",
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
};

export interface Member {
  user_id: number;
  username: string;
  email: string;
  role: Role;
  joined_at: string;
  judgment_count: number;
  last_judgment_at: string | null;
}

export type InviteState = "active" | "used" | "expired" | "revoked";

export interface Invite {
  id: number;
  role: Role;
  created_at: string;
  created_by: string | null;
  expires_at: string;
  used_at: string | null;
  used_by: string | null;
  revoked_at: string | null;
  state: InviteState;
}

export interface CreatedInvite extends Invite {
  token: string;
  path: string;
}

/** GET /api/invites/{token}/ — public. */
export interface InviteInfo {
  project: { id: number; name: string };
  role: Role;
  expires_at: string;
  valid: boolean;
  reason: "used" | "expired" | "revoked" | "archived" | null;
}

export type NewMember =
  | { role: Role; user: string }
  | { role: Role; username: string; password: string; email?: string };

export const adminApi = {
  project(projectId: number, signal?: AbortSignal): Promise<AdminProject> {
    return request<AdminProject>(`/api/projects/${projectId}/`, { signal });
  },
  createProject(settings: Partial<ProjectSettings>): Promise<AdminProject> {
    return request<AdminProject>("/api/projects/", { method: "POST", body: settings });
  },
  updateProject(projectId: number, changes: Partial<ProjectSettings>): Promise<AdminProject> {
    return request<AdminProject>(`/api/projects/${projectId}/`, { method: "PATCH", body: changes });
  },
  archive(projectId: number): Promise<AdminProject> {
    return request<AdminProject>(`/api/projects/${projectId}/archive/`, { method: "POST" });
  },
  unarchive(projectId: number): Promise<AdminProject> {
    return request<AdminProject>(`/api/projects/${projectId}/unarchive/`, { method: "POST" });
  },
  members(projectId: number, signal?: AbortSignal): Promise<Member[]> {
    return request<Member[]>(`/api/projects/${projectId}/members/`, { signal });
  },
  addMember(projectId: number, body: NewMember): Promise<Member> {
    return request<Member>(`/api/projects/${projectId}/members/`, { method: "POST", body });
  },
  changeRole(projectId: number, userId: number, role: Role): Promise<Member> {
    return request<Member>(`/api/projects/${projectId}/members/${userId}/`, { method: "PATCH", body: { role } });
  },
  removeMember(projectId: number, userId: number): Promise<void> {
    return request<void>(`/api/projects/${projectId}/members/${userId}/`, { method: "DELETE" });
  },
  invites(projectId: number, signal?: AbortSignal): Promise<Invite[]> {
    return request<Invite[]>(`/api/projects/${projectId}/invites/`, { signal });
  },
  createInvite(projectId: number, role: Role, expiresInHours: number): Promise<CreatedInvite> {
    return request<CreatedInvite>(`/api/projects/${projectId}/invites/`, {
      method: "POST",
      body: { role, expires_in_hours: expiresInHours },
    });
  },
  revokeInvite(projectId: number, inviteId: number): Promise<void> {
    return request<void>(`/api/projects/${projectId}/invites/${inviteId}/`, { method: "DELETE" });
  },
  invite(token: string, signal?: AbortSignal): Promise<InviteInfo> {
    return request<InviteInfo>(`/api/invites/${encodeURIComponent(token)}/`, { signal });
  },
  acceptInvite(
    token: string,
    body: { username?: string; password?: string; email?: string },
  ): Promise<{ project_id: number; role: Role; username: string }> {
    return request(`/api/invites/${encodeURIComponent(token)}/accept/`, { method: "POST", body });
  },
};
