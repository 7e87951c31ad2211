/**
 * The flag semantics, pinned by tests/vectors/ (buckets.csv, evaluate.json) together with the
 * Python implementation (client/flagops_client/evaluation.py). A changed bucket would reshuffle
 * live tenants: these functions never change behaviour.
 */
import { createHash } from "node:crypto";

export type State = "off" | "on" | "targeted" | "rollout";

export const AXES = ["plans", "tenantSlugs", "partnerSlugs", "environments"] as const;
export type Axis = (typeof AXES)[number];

export type Scope = Partial<Record<Axis, readonly string[] | null>>;

/** A flag in the shape of its file (flags/<key>.yaml) or of rules.json. */
export interface Flag {
  key: string;
  state: State | string;
  pct?: number | null;
  scope?: Scope | null;
}

export interface Tenant {
  id: string;
  slug: string;
  plan: string;
  partnerSlug?: string | null;
}

const HUNDRED = 100n;

/** The tenant's rollout bucket for a flag, 0..99: sha256("<id>:<key>") (UTF-8), big-endian, mod 100. */
export function bucket(tenantId: string, key: string): number {
  const digest = createHash("sha256").update(`${tenantId}:${key}`, "utf8").digest("hex");
  return Number(BigInt(`0x${digest}`) % HUNDRED);
}

/** True when every non-empty axis of the scope holds the tenant's value on that axis. */
export function matchesScope(scope: Scope | null | undefined, tenant: Tenant, environment: string): boolean {
  if (!scope) return true;
  for (const axis of AXES) {
    const allowed = scope[axis];
    if (!allowed || allowed.length === 0) continue;
    const value = axisValue(axis, tenant, environment);
    if (value === null || value === undefined || !allowed.includes(value)) return false;
  }
  return true;
}

export function hasAnyScope(scope: Scope | null | undefined): boolean {
  return !!scope && AXES.some((axis) => (scope[axis]?.length ?? 0) > 0);
}

function axisValue(axis: Axis, tenant: Tenant, environment: string): string | null | undefined {
  switch (axis) {
    case "plans":
      return tenant.plan;
    case "tenantSlugs":
      return tenant.slug;
    case "partnerSlugs":
      return tenant.partnerSlug;
    case "environments":
      return environment;
  }
}

/** The value of one flag for one tenant in one environment; an unknown state fails closed. */
export function evaluate(flag: Flag, tenant: Tenant, environment: string): boolean {
  switch (flag.state) {
    case "on":
      return true;
    case "off":
      return false;
    case "targeted":
      return hasAnyScope(flag.scope) && matchesScope(flag.scope, tenant, environment);
    case "rollout":
      if (!matchesScope(flag.scope, tenant, environment)) return false;
      return bucket(String(tenant.id), String(flag.key)) < Math.trunc(Number(flag.pct ?? 0) || 0);
    default:
      return false;
  }
}
