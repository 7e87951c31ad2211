/**
 * @dezky/flagops-client: read flagops feature flags in TypeScript services.
 *
 * `FlagClient` answers from memory, refreshes in the background and survives outages;
 * `evaluate` and `bucket` are the flag semantics, pinned by the same test vectors as Python's.
 * The OpenFeature provider is `@dezky/flagops-client/openfeature`.
 */
export {
  FlagClient, DEFAULT_REVALIDATE_RATE, DEFAULT_MAX_TENANTS, DEFAULT_REFRESH_INTERVAL_MS, DEFAULT_TIMEOUT_MS,
} from "./client.js";
export type { ErrorCode, FlagClientOptions, Logger, ReadOptions, Reason, Resolution, Status, TenantAttributes } from "./client.js";
export { DocumentError } from "./documents.js";
export { AXES, bucket, evaluate, hasAnyScope, matchesScope } from "./evaluation.js";
export type { Axis, Flag, Scope, State, Tenant } from "./evaluation.js";
