/**
 * An OpenFeature provider for `@openfeature/server-sdk` (a peer dependency, imported for types
 * only), backed by FlagClient. Boolean flags only, `targetingKey` = the tenant slug; the context
 * may carry `id`, `plan` and `partnerSlug`, so that a tenant with no bundle yet is evaluated from
 * rules.json. Reasons as the Python provider gives them: STATIC, STALE, TARGETING_MATCH, DEFAULT
 * and ERROR with an error code.
 *
 *     OpenFeature.setProvider(new FlagopsProvider({ baseUrl, environment: "production", cacheDir }));
 */
import type {
  ErrorCode, EvaluationContext, JsonValue, Provider, ProviderMetadata, ResolutionDetails,
} from "@openfeature/server-sdk";

import { FlagClient, type FlagClientOptions, type TenantAttributes } from "./client.js";

const DECIDED = new Set(["STATIC", "STALE", "TARGETING_MATCH"]); // reasons where the value came from flagops

export class FlagopsProvider implements Provider {
  readonly metadata: ProviderMetadata = { name: "flagops" };
  readonly runsOn = "server" as const;
  readonly client: FlagClient;
  private readonly owned: boolean;

  /** The options of a FlagClient (the provider then owns it), or a FlagClient to share. */
  constructor(options: FlagClientOptions | FlagClient) {
    if (options instanceof FlagClient) {
      this.client = options;
      this.owned = false;
    } else {
      this.client = new FlagClient(options);
      this.owned = true;
    }
  }

  async onClose(): Promise<void> {
    if (this.owned) await this.client.close();
  }

  async resolveBooleanEvaluation(flagKey: string, defaultValue: boolean,
                                 context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    const tenant = context?.targetingKey;
    if (!tenant) {
      return { value: defaultValue, reason: "ERROR", errorCode: code("TARGETING_KEY_MISSING"),
        errorMessage: "targetingKey (the tenant slug) is required" };
    }
    const res = await this.client.resolve(flagKey, { tenant, default: defaultValue, attributes: attributesOf(context) });
    return {
      value: res.value,
      reason: res.reason,
      ...(res.errorCode ? { errorCode: code(res.errorCode), errorMessage: res.message } : {}),
      ...(DECIDED.has(res.reason) ? { variant: res.value ? "on" : "off" } : {}),
    };
  }

  // Only booleans are served: any other type answers the default with TYPE_MISMATCH.
  resolveStringEvaluation(_key: string, defaultValue: string): Promise<ResolutionDetails<string>> {
    return mismatch(defaultValue);
  }

  resolveNumberEvaluation(_key: string, defaultValue: number): Promise<ResolutionDetails<number>> {
    return mismatch(defaultValue);
  }

  resolveObjectEvaluation<T extends JsonValue>(_key: string, defaultValue: T): Promise<ResolutionDetails<T>> {
    return mismatch(defaultValue);
  }
}

function attributesOf(context: EvaluationContext): TenantAttributes | undefined {
  if (!("id" in context)) return undefined;
  const text = (v: unknown): string | null => (typeof v === "string" ? v : null);
  return { id: String(context.id ?? ""), plan: text(context.plan), partnerSlug: text(context.partnerSlug) };
}

// ErrorCode is a string enum of the SDK: its values are spelled as the specification names them.
function code(name: string): ErrorCode {
  return name as unknown as ErrorCode;
}

function mismatch<T>(value: T): Promise<ResolutionDetails<T>> {
  return Promise.resolve({ value, reason: "ERROR", errorCode: code("TYPE_MISMATCH"),
    errorMessage: "flagops serves boolean flags only" });
}
