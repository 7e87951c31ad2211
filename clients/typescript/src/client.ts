/**
 * FlagClient: answer "is this flag on for this tenant?" from memory; refresh in the background.
 *
 * - Tenant mode (default): each tenant's bundle is loaded on its first read and held (at most
 *   `maxTenants`, least recently read evicted). Each interval one conditional GET of
 *   `<env>/head.json`; only when its content changes (revision and snapshot digest; the sequence
 *   when the revision cannot tell) are the held bundles revalidated, with
 *   conditional GETs paced at `revalidateRate`. A store without a head is revalidated
 *   bundle by bundle each interval, with one warning.
 * - Snapshot mode (`allTenants`): `<env>/snapshot.json` holds every tenant as a bitset; it is
 *   fetched again only when the head names another snapshot digest.
 * - Either way, the keys the head lists in `off` read false for every tenant at once, and a head
 *   whose sequence is lower than one applied is never applied.
 * - A document replaces the one in use only after every check in documents.ts passed. Failures
 *   keep the last known good flags (in memory and in `cacheDir`), log one warning per failure
 *   streak and back off with jitter. A read never throws; a first read waits at most `timeoutMs`.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";

import { CacheDir, type CacheRecord, validatorsOf } from "./cache.js";
import {
  DocumentError, ENVIRONMENT, type Flags, type Head, type Rules, type Snapshot, checkBundle, checkHead, checkRules,
  checkSnapshot, parseJson, snapshotFlags, validSlug,
} from "./documents.js";
import { type Tenant, evaluate } from "./evaluation.js";
import {
  FetchError, MAX_DOCUMENT, MAX_SNAPSHOT, type Response, StoreTransport, type Transport, checkBaseUrl, documentUrl,
  redact,
} from "./transport.js";

export const DEFAULT_MAX_TENANTS = 10_000;
export const DEFAULT_REFRESH_INTERVAL_MS = 30_000;
export const DEFAULT_TIMEOUT_MS = 2_000;
export const DEFAULT_REVALIDATE_RATE = 50;
const MAX_PREFETCHES = 32;

export interface Logger {
  warn(message: string): void;
  info?(message: string): void;
  debug?(message: string): void;
}

export interface FlagClientOptions {
  /** `https://host/prefix`, `http://host/prefix` or `file:///dir`: documents are under `<baseUrl>/<environment>/`. */
  baseUrl: string;
  environment: string;
  /** Where the last good documents are kept across restarts (read at construction). */
  cacheDir?: string;
  /** Between background refreshes; `null` or `0` for none (call `refresh()`). Default 30 s. */
  refreshIntervalMs?: number | null;
  /** Bound on one request, and on a first read. Default 2 s. */
  timeoutMs?: number;
  /** Tenants held in memory in tenant mode, least recently read evicted first. Default 10,000. */
  maxTenants?: number;
  /** Snapshot mode: every tenant of the environment from `<env>/snapshot.json`. */
  allTenants?: boolean;
  /** Where `snapshot.json` is readable when it is not under `baseUrl` (it is private: a presigned URL or a mirror). */
  snapshotUrl?: string;
  /** Where `rules.json` is readable when it is not under `baseUrl` (it lists allowlists: usually private). */
  rulesUrl?: string;
  /** Pace of the bundle revalidations after a head change (tenant mode). Default 50. */
  revalidateRate?: number;
  /** Sent with every HTTP request (for example an authorization header for a private mirror). */
  headers?: Record<string, string>;
  /** Default: stderr (`console.warn`, `console.error`), messages prefixed "flagops:". */
  logger?: Logger;
}

/** Reasons, spelled as the OpenFeature specification names them. */
export type Reason = "STATIC" | "STALE" | "TARGETING_MATCH" | "DEFAULT" | "ERROR";

/** What a read may tell about a tenant that has no bundle yet, so that it is evaluated from rules.json. */
export interface TenantAttributes {
  id: string;
  plan?: string | null;
  partnerSlug?: string | null;
}

export interface ReadOptions {
  tenant: string;
  default?: boolean;
  attributes?: TenantAttributes;
}
export type ErrorCode = "FLAG_NOT_FOUND" | "INVALID_CONTEXT" | "GENERAL";

/** A value with why it was chosen (`errorCode` when the default had to do). */
export interface Resolution {
  value: boolean;
  reason: Reason;
  errorCode?: ErrorCode;
  message?: string;
}

export interface Status {
  environment: string;
  mode: "tenant" | "snapshot";
  tenants: number; // tenants answered from memory
  missing: number; // tenants in memory with no bundle (tenant mode)
  lastSuccess: number | null; // epoch ms: last refresh that reached the store
  lastError: string | null;
  lastErrorAt: number | null;
  failures: number; // consecutive failed refreshes
  ageMs: number | null; // since the oldest flags in memory were confirmed by the store
  stale: boolean; // a failure streak, or data older than two refresh intervals
  revision: string | null;
  sequence: number | null; // of the head applied
  off: string[]; // keys the head turns off for every tenant
  head: "present" | "absent" | "unknown";
  refreshing: boolean;
  fetched: number; // documents downloaded and accepted (200)
  notModified: number; // conditional requests answered 304
  requests: number; // requests sent to the store
}

class Entry {
  flags: Flags | null = null; // frozen; replaced, never mutated
  etag: string | null = null;
  lastModified: string | null = null;
  confirmed: number | null = null; // epoch ms the store last vouched for it
  checkedUnder: string | undefined = undefined; // contentKey of the head it was validated under
  missing = false;
  constructor(public used: number) {}
}

interface Held<T> {
  value: T | null;
  etag: string | null;
  lastModified: string | null;
  confirmed: number | null;
  digest: string | null;
  missing: boolean;
}

type HeadOutcome = "applied" | "unchanged" | "absent" | "rejected";

// Diagnostics go to stderr: a service's stdout is often its own protocol or log stream.
const CONSOLE: Logger = {
  warn: (m) => console.warn(m),
  info: (m) => console.error(m),
};

function held<T>(): Held<T> {
  return { value: null, etag: null, lastModified: null, confirmed: null, digest: null, missing: false };
}

function positive(name: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number`);
  return value;
}

export class FlagClient {
  readonly environment: string;
  readonly baseUrl: string;
  readonly refreshIntervalMs: number | null;
  readonly timeoutMs: number;
  readonly maxTenants: number;
  readonly allTenants: boolean;

  private readonly base: URL;
  private readonly where: string;
  private readonly headUrl: string;
  private readonly snapshotUrl: string;
  private readonly rulesUrl: string;
  private readonly rate: number;
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly cache: CacheDir | null;
  private readonly staleAfter: number | null;

  private readonly tenants = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Entry | undefined>>();
  private tick = 0;
  private off: ReadonlySet<string> = new Set();
  private head: Held<Head> = held();
  private headState: Status["head"] = "unknown";
  private headReady: Promise<unknown> | null = null;
  private snap: Held<Snapshot> = held();
  private snapReady: Promise<unknown> | null = null;
  private rules: Held<Rules> = held();
  private rulesUnder: string | undefined = undefined; // contentKey of the head the rules were validated under
  private rulesWanted = false;
  private rulesLoad: Promise<unknown> | null = null;

  private cycling: Promise<boolean> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly stopped = new AbortController();
  private closed = false;

  private lastSuccess: number | null = null;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private streak = 0;
  private failing = false;
  private readonly rejected = new Set<string>();
  private cacheFailing = false;
  private revision: string | null = null;
  private fetched = 0;
  private notModified = 0;
  private requests = 0;

  /** Throws TypeError or RangeError for invalid options only; nothing else ever throws. */
  constructor(options: FlagClientOptions) {
    const { baseUrl, environment } = options ?? ({} as FlagClientOptions);
    this.base = checkBaseUrl(baseUrl);
    if (typeof environment !== "string" || !ENVIRONMENT.test(environment)) {
      throw new TypeError(`invalid environment ${JSON.stringify(environment)}`);
    }
    const interval = options.refreshIntervalMs === undefined ? DEFAULT_REFRESH_INTERVAL_MS : options.refreshIntervalMs;
    this.refreshIntervalMs = interval === null || interval === 0 ? null : positive("refreshIntervalMs", interval);
    this.timeoutMs = positive("timeoutMs", options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const maxTenants = options.maxTenants ?? DEFAULT_MAX_TENANTS;
    if (!Number.isInteger(maxTenants) || maxTenants < 1) throw new RangeError("maxTenants must be an integer of at least 1");
    this.maxTenants = maxTenants;
    this.rate = positive("revalidateRate", options.revalidateRate ?? DEFAULT_REVALIDATE_RATE);
    this.allTenants = options.allTenants === true;
    this.environment = environment;
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.where = redact(this.base.href);
    this.headUrl = documentUrl(this.base, `${environment}/head.json`);
    this.snapshotUrl = options.snapshotUrl
      ? checkBaseUrl(options.snapshotUrl).href
      : documentUrl(this.base, `${environment}/snapshot.json`);
    this.rulesUrl = options.rulesUrl
      ? checkBaseUrl(options.rulesUrl).href
      : documentUrl(this.base, `${environment}/rules.json`);
    this.transport = new StoreTransport(options.headers ?? {});
    this.log = options.logger ?? CONSOLE;
    this.staleAfter = this.refreshIntervalMs !== null ? 2 * this.refreshIntervalMs : null;
    this.cache = options.cacheDir
      ? new CacheDir(join(options.cacheDir, environment), (path, err) => this.cacheError(path, err),
        () => { this.cacheFailing = false; })
      : null;
    if (this.cache) this.loadCache();
    if (this.allTenants && this.snap.value === null) this.snapReady = this.loadSnapshotFirst();
    if (this.refreshIntervalMs !== null) {
      const restored = this.tenants.size > 0 || this.snap.value !== null;
      // Flags restored from cacheDir may be old: check them at once, then every interval.
      this.schedule(restored ? 0 : this.nextDelay());
    }
  }

  // ------------------------------------------------------------------ reads

  /**
   * Synchronous, for hot paths: the flag's value for a tenant already in memory, else `def`
   * (and the tenant's bundle is loaded in the background). No I/O, no allocation, never throws.
   */
  isEnabledCached(key: string, tenant: string, def = false): boolean {
    try {
      const snap = this.snap.value;
      if (snap !== null) {
        const row = snap.rows.get(tenant);
        if (row === undefined) return def;
        if (this.off.has(key)) return false;
        const i = snap.index.get(key);
        return i === undefined ? def : (snap.bits[row + (i >> 3)]! & (1 << (i & 7))) !== 0;
      }
      const entry = this.tenants.get(tenant);
      if (entry !== undefined) {
        entry.used = ++this.tick;
        const flags = entry.flags;
        if (flags === null) return def;
        if (this.off.has(key)) return false;
        const value = flags[key];
        return value === undefined ? def : value;
      }
      if (!this.allTenants) this.prefetch(tenant);
    } catch {
      // never into the caller
    }
    return def;
  }

  /** The flag's value for the tenant; `default` (false) when it cannot be known. Never rejects. */
  async isEnabled(key: string, options: ReadOptions): Promise<boolean> {
    return (await this.resolve(key, options)).value;
  }

  /** Every flag of the tenant (a copy), or `null` when there is no bundle for it (or no flags yet). Never rejects. */
  async flags(slug: string): Promise<Record<string, boolean> | null> {
    try {
      if (!validSlug(slug)) return null;
      const deadline = Date.now() + this.timeoutMs;
      let out: Record<string, boolean> | null;
      if (this.allTenants) {
        await this.snapshotLoaded(deadline);
        out = this.snap.value ? snapshotFlags(this.snap.value, slug) : null;
      } else {
        const entry = await this.entry(slug, deadline);
        out = entry?.flags ? { ...entry.flags } : null;
      }
      if (out) for (const key of this.off) if (key in out) out[key] = false;
      return out;
    } catch (err) {
      this.log.debug?.(`flagops: flags(${JSON.stringify(slug)}) failed: ${String(err)}`);
      return null;
    }
  }

  /**
   * Like `isEnabled`, with the reason (STATIC, STALE, TARGETING_MATCH, DEFAULT, ERROR) and an
   * error code. With `attributes`, a tenant that has no bundle yet is evaluated from rules.json.
   * Never rejects.
   */
  async resolve(key: string, options: ReadOptions): Promise<Resolution> {
    const def = options?.default ?? false;
    const tenant = options?.tenant;
    try {
      if (!validSlug(tenant)) return { value: def, reason: "ERROR", errorCode: "INVALID_CONTEXT", message: `invalid tenant slug ${JSON.stringify(tenant)}` };
      const deadline = Date.now() + this.timeoutMs;
      let flags: Flags | Record<string, boolean> | null = null;
      let confirmed: number | null = null;
      let missing = false;
      if (this.allTenants) {
        await this.snapshotLoaded(deadline);
        const snap = this.snap.value;
        if (snap) {
          const i = snap.index.get(key);
          const row = snap.rows.get(tenant);
          missing = row === undefined;
          if (row !== undefined) flags = i === undefined ? {} : { [key]: (snap.bits[row + (i >> 3)]! & (1 << (i & 7))) !== 0 };
          confirmed = this.freshness(this.snap.confirmed, this.snapVouched());
        } else missing = this.snap.missing;
      } else {
        const entry = await this.entry(tenant, deadline);
        if (entry) {
          flags = entry.flags;
          missing = entry.missing;
          confirmed = this.entryConfirmed(entry);
        }
      }
      if (flags !== null) {
        if (!(key in flags) && !this.off.has(key)) return { value: def, reason: "ERROR", errorCode: "FLAG_NOT_FOUND", message: `no flag ${JSON.stringify(key)} for ${tenant}` };
        const value = this.off.has(key) ? false : flags[key]!;
        const stale = this.staleAfter !== null && (confirmed === null || Date.now() - confirmed > this.staleAfter);
        return { value, reason: stale ? "STALE" : "STATIC" };
      }
      const attributes = options.attributes;
      if (attributes != null) {
        if (attributes.id == null || attributes.id === "") {
          return { value: def, reason: "ERROR", errorCode: "INVALID_CONTEXT", message: "attributes need an id" };
        }
        const rules = await this.rulesFor(deadline);
        if (rules !== null) {
          const flag = rules[key];
          if (flag === undefined) return { value: def, reason: "ERROR", errorCode: "FLAG_NOT_FOUND", message: `no flag ${JSON.stringify(key)}` };
          const subject = { id: String(attributes.id), slug: tenant, plan: attributes.plan ?? null, partnerSlug: attributes.partnerSlug ?? null };
          return { value: this.off.has(key) ? false : evaluate(flag, subject as Tenant, this.environment), reason: "TARGETING_MATCH" };
        }
      }
      if (missing) return { value: def, reason: "DEFAULT", message: `no bundle for ${tenant} yet` };
      return { value: def, reason: "ERROR", errorCode: "GENERAL", message: `flags for ${tenant} unavailable: ${this.lastError ?? "not loaded"}` };
    } catch (err) {
      return { value: def, reason: "ERROR", errorCode: "GENERAL", message: String(err) };
    }
  }

  // ------------------------------------------------------------------ first loads

  private prefetch(tenant: string): void {
    // Bounded: a burst of unknown tenants on a hot path never opens unbounded requests.
    if (this.closed || this.loading.has(tenant) || this.loading.size >= MAX_PREFETCHES || !validSlug(tenant)) return;
    this.entry(tenant, Date.now() + this.timeoutMs).catch(() => undefined);
  }

  private async entry(tenant: string, deadline: number): Promise<Entry | undefined> {
    const known = this.tenants.get(tenant);
    if (known !== undefined) {
      known.used = ++this.tick;
      return known;
    }
    if (this.closed) return undefined;
    let pending = this.loading.get(tenant);
    if (pending === undefined) {
      pending = this.loadTenant(tenant, deadline).finally(() => this.loading.delete(tenant));
      this.loading.set(tenant, pending);
    }
    // Someone else's load may have a later deadline than ours: never wait past our own.
    return within(pending, deadline);
  }

  private async loadTenant(tenant: string, deadline: number): Promise<Entry | undefined> {
    const entry = new Entry(++this.tick);
    // The first read also learns the head, so that a kill applies from the very first answer.
    this.headReady ??= this.pollHead(deadline).catch((err: unknown) => this.failure(`loading the head: ${String(err)}`));
    const head = within(this.headReady, deadline);
    try {
      if (!(await this.fetchTenant(tenant, entry, deadline))) this.fromCache(tenant, entry);
      this.lastSuccess = Date.now();
    } catch (err) {
      if (!(err instanceof FetchError)) throw err;
      this.failure(`loading ${tenant}: ${err.message}`);
      this.fromCache(tenant, entry);
    }
    this.insert(tenant, entry);
    await head;
    return entry;
  }

  private insert(tenant: string, entry: Entry): void {
    this.tenants.set(tenant, entry);
    while (this.tenants.size > this.maxTenants) {
      let victim: string | undefined;
      let oldest = Infinity;
      for (const [slug, e] of this.tenants) {
        if (e.used < oldest) {
          oldest = e.used;
          victim = slug;
        }
      }
      if (victim === undefined) break;
      this.tenants.delete(victim);
    }
  }

  private async loadSnapshotFirst(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    this.headReady ??= this.pollHead(deadline).catch((err: unknown) => this.failure(`loading the head: ${String(err)}`));
    try {
      await this.fetchSnapshot(deadline);
      this.lastSuccess = Date.now();
    } catch (err) {
      if (!(err instanceof FetchError)) throw err;
      this.failure(`loading the snapshot: ${err.message}`);
    }
    await within(this.headReady, deadline);
  }

  /** The rules, loaded once on first need (within the deadline); the refresh keeps them fresh. */
  private async rulesFor(deadline: number): Promise<Rules | null> {
    if (this.rules.value !== null || this.closed) return this.rules.value;
    this.rulesWanted = true;
    this.rulesLoad ??= this.fetchRules(deadline).catch((err: unknown) => {
      if (err instanceof FetchError) this.failure(`loading rules: ${err.message}`);
    });
    await within(this.rulesLoad, deadline);
    return this.rules.value;
  }

  private async snapshotLoaded(deadline: number): Promise<void> {
    if (this.snap.value === null && this.snapReady !== null) await within(this.snapReady, deadline);
  }

  // ------------------------------------------------------------------ fetching

  private async get(url: string, v: { etag: string | null; lastModified: string | null }, deadline: number,
                    limit = MAX_DOCUMENT): Promise<Response> {
    this.requests++;
    const resp = await this.transport.get(url, v, deadline - Date.now(), limit);
    if (resp.status === 304) this.notModified++;
    return resp;
  }

  /** Bring one tenant up to date; false when its document was rejected. Throws FetchError. */
  private async fetchTenant(tenant: string, entry: Entry, deadline: number): Promise<boolean> {
    const name = `tenants/${tenant}.json`;
    const under = contentKey(this.head.value);
    const resp = await this.get(documentUrl(this.base, `${this.environment}/${name}`), entry, deadline);
    const now = Date.now();
    if (resp.status === 304) {
      entry.confirmed = now;
      entry.checkedUnder = under;
      return true;
    }
    if (resp.status === 404) {
      if (entry.flags === null) {
        entry.missing = true;
        entry.confirmed = now;
        entry.checkedUnder = under;
        return true;
      }
      return this.reject(name, "no longer found; keeping the previous flags");
    }
    let flags: Flags;
    try {
      flags = checkBundle(parseJson(resp.body!), this.environment, tenant);
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      return this.reject(name, `${err.message}; keeping the previous flags`);
    }
    this.accepted(name);
    this.fetched++;
    Object.assign(entry, { flags, etag: resp.etag ?? null, lastModified: resp.lastModified ?? null, confirmed: now,
      checkedUnder: under, missing: false });
    this.cache?.write(name, Buffer.from(resp.body!).toString("utf8"), entry);
    return true;
  }

  /** One conditional GET of the head; applies `off` and the sequence at once. Throws FetchError. */
  private async pollHead(deadline: number): Promise<HeadOutcome> {
    const resp = await this.get(this.headUrl, this.head, deadline);
    const now = Date.now();
    if (resp.status === 304) {
      this.head.confirmed = now;
      this.headState = "present";
      return "unchanged";
    }
    if (resp.status === 404) {
      if (this.headState !== "absent") {
        this.log.warn(`flagops: ${this.where} has no ${this.environment}/head.json (an older store): `
          + `revalidating every ${this.allTenants ? "snapshot" : "held bundle"} each interval`);
      }
      this.headState = "absent";
      return "absent";
    }
    let head: Head;
    try {
      head = checkHead(parseJson(resp.body!), this.environment);
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      this.reject("head.json", `${err.message}; keeping the previous head`);
      return "rejected";
    }
    const applied = this.head.value;
    if (applied !== null && head.sequence < applied.sequence) {
      // A stale copy (a cache in front of the store): never take flags back.
      this.reject("head.json", `sequence ${head.sequence} is lower than ${applied.sequence}, already applied; keeping it`);
      return "rejected";
    }
    this.accepted("head.json");
    this.headState = "present";
    this.fetched++;
    this.applyHead(head, { etag: resp.etag ?? null, lastModified: resp.lastModified ?? null, confirmed: now });
    this.cache?.write("head.json", Buffer.from(resp.body!).toString("utf8"), this.head);
    return "applied";
  }

  private applyHead(head: Head, meta: { etag: string | null; lastModified: string | null; confirmed: number | null }): void {
    this.head = { ...this.head, value: head, ...meta };
    this.off = new Set(head.off); // one reference swap readers see
    if (head.revision) this.revision = head.revision;
  }

  /** Fetch the snapshot (conditionally); false when rejected. Throws FetchError. */
  private async fetchSnapshot(deadline: number): Promise<boolean> {
    const resp = await this.get(this.snapshotUrl, this.snap, deadline, MAX_SNAPSHOT);
    const now = Date.now();
    if (resp.status === 304) {
      this.snap.confirmed = now;
      return true;
    }
    if (resp.status === 404) {
      if (this.snap.value === null) {
        this.snap.missing = true;
        return true;
      }
      return this.reject("snapshot.json", "no longer found; keeping the previous snapshot");
    }
    const body = resp.body!;
    let snapshot: Snapshot;
    try {
      snapshot = checkSnapshot(parseJson(body), this.environment);
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      return this.reject("snapshot.json", `${err.message}; keeping the previous snapshot`);
    }
    this.accepted("snapshot.json");
    this.fetched++;
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    this.snap = { value: snapshot, etag: resp.etag ?? null, lastModified: resp.lastModified ?? null, confirmed: now, digest, missing: false };
    if (snapshot.revision) this.revision = snapshot.revision;
    this.cache?.write("snapshot.json", Buffer.from(body).toString("utf8"), this.snap, digest);
    return true;
  }

  /** rules.json (conditionally); false when rejected. Throws FetchError. */
  private async fetchRules(deadline: number): Promise<boolean> {
    const under = contentKey(this.head.value);
    const resp = await this.get(this.rulesUrl, this.rules, deadline);
    const now = Date.now();
    if (resp.status === 304) {
      this.rules.confirmed = now;
      this.rulesUnder = under;
      return true;
    }
    if (resp.status === 404) {
      this.rules.missing = this.rules.value === null;
      this.rulesUnder = under;
      return true;
    }
    let rules: Rules;
    try {
      rules = checkRules(parseJson(resp.body!), this.environment);
    } catch (err) {
      if (!(err instanceof DocumentError)) throw err;
      return this.reject("rules.json", `${err.message}; keeping the previous rules`);
    }
    this.accepted("rules.json");
    this.fetched++;
    this.rules = { value: rules, etag: resp.etag ?? null, lastModified: resp.lastModified ?? null, confirmed: now, digest: null, missing: false };
    this.rulesUnder = under;
    this.cache?.write("rules.json", Buffer.from(resp.body!).toString("utf8"), this.rules);
    return true;
  }

  // ------------------------------------------------------------------ refresh

  /** Refresh now: the head, then what it says changed. True when the store answered for everything. */
  refresh(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.cycling ??= this.cycle()
      .catch((err: unknown) => { // a refresh never rejects either
        this.streak++;
        this.log.warn(`flagops: unexpected error while refreshing flags: ${String(err)}`);
        return false;
      })
      .finally(() => { this.cycling = null; });
    return this.cycling;
  }

  private async cycle(): Promise<boolean> {
    try {
      const outcome = await this.pollHead(Date.now() + this.timeoutMs);
      this.headReady ??= Promise.resolve();
      let good = outcome !== "rejected";
      if (this.allTenants) {
        const head = this.head.value;
        const wanted = this.snap.value === null || outcome === "absent"
          || (head !== null && head.snapshot !== null && head.snapshot !== this.snap.digest);
        if (wanted) good = (await this.fetchSnapshot(Date.now() + this.timeoutMs)) && good;
      } else {
        good = (await this.revalidate(outcome === "absent")) && good;
      }
      const key = contentKey(this.head.value);
      if (this.rulesWanted && (this.headState !== "present" || key === undefined || this.rulesUnder !== key)) {
        good = (await this.fetchRules(Date.now() + this.timeoutMs)) && good;
      }
      this.streak = 0;
      this.lastSuccess = Date.now();
      if (this.failing) {
        this.failing = false;
        this.log.info?.(`flagops: reading flags from ${this.where} works again`);
      }
      return good;
    } catch (err) {
      if (!(err instanceof FetchError)) throw err;
      // The store is unreachable: stop this round instead of timing out tenant by tenant.
      this.streak++;
      this.failure(err.message);
      return false;
    }
  }

  /** The held bundles the head has not vouched for, paced; all of them without a head. */
  private async revalidate(all: boolean): Promise<boolean> {
    const key = contentKey(this.head.value);
    const due = [...this.tenants].filter(([, e]) => all || this.headState !== "present" || key === undefined || e.checkedUnder !== key);
    const gap = 1000 / this.rate;
    const start = Date.now();
    let good = true;
    for (let i = 0; i < due.length; i++) {
      if (this.stopped.signal.aborted) return false;
      const wait = start + i * gap - Date.now();
      if (wait > 0) await sleep(wait, this.stopped.signal);
      const [slug, entry] = due[i]!;
      if (this.tenants.get(slug) !== entry) continue; // evicted meanwhile
      good = (await this.fetchTenant(slug, entry, Date.now() + this.timeoutMs)) && good;
    }
    return good;
  }

  private nextDelay(): number {
    const interval = this.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS;
    // Jitter spreads many instances; only ever earlier, so a change shows within one interval.
    if (this.streak === 0) return interval * (0.8 + 0.2 * Math.random());
    const base = Math.min(1000, interval);
    return Math.min(4 * interval, base * 2 ** (this.streak - 1)) * (0.5 + 0.5 * Math.random());
  }

  private schedule(delay: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.refresh().finally(() => this.schedule(this.nextDelay()));
    }, delay);
    this.timer.unref(); // never keeps the process alive
  }

  // ------------------------------------------------------------------ failures and logging

  private failure(message: string): void {
    this.lastError = message;
    this.lastErrorAt = Date.now();
    if (!this.failing) {
      this.failing = true;
      this.log.warn(`flagops: cannot read flags from ${this.where} (${message}); serving the last known flags and retrying with backoff`);
    }
  }

  private reject(name: string, message: string): false {
    this.lastError = `${name}: ${message}`;
    this.lastErrorAt = Date.now();
    if (!this.rejected.has(name)) {
      this.rejected.add(name);
      this.log.warn(`flagops: rejected ${name} from ${this.where}: ${message}`);
    }
    return false;
  }

  private accepted(name: string): void {
    if (this.rejected.delete(name)) this.log.info?.(`flagops: ${name} is valid again`);
  }

  private cacheError(path: string, err: Error): void {
    if (!this.cacheFailing) {
      this.cacheFailing = true;
      this.log.warn(`flagops: cannot write the flags cache ${path} (${err.message})`);
    }
  }

  // ------------------------------------------------------------------ cacheDir

  private fromCache(tenant: string, entry: Entry): boolean {
    const record = this.cache?.read(`tenants/${tenant}.json`);
    if (!record) return false;
    try {
      entry.flags = checkBundle(record.document, this.environment, tenant);
    } catch {
      return false;
    }
    Object.assign(entry, validatorsOf(record), { missing: false, checkedUnder: undefined });
    return true;
  }

  /** At construction: the head, the snapshot or the most recently cached tenants, up to the bound. */
  private loadCache(): void {
    const cache = this.cache!;
    const headRecord = cache.read("head.json");
    if (headRecord) {
      try {
        const v = validatorsOf(headRecord);
        this.applyHead(checkHead(headRecord.document, this.environment),
          { etag: v.etag ?? null, lastModified: v.lastModified ?? null, confirmed: v.confirmed ?? null });
      } catch {
        // a bad cached head is ignored
      }
    }
    const rulesRecord = cache.read("rules.json");
    if (rulesRecord) {
      try {
        const v = validatorsOf(rulesRecord);
        this.rules = { value: checkRules(rulesRecord.document, this.environment), etag: v.etag ?? null,
          lastModified: v.lastModified ?? null, confirmed: v.confirmed ?? null, digest: null, missing: false };
        this.rulesWanted = true;
      } catch {
        // a bad cached copy is ignored
      }
    }
    if (this.allTenants) {
      const record = cache.read("snapshot.json");
      if (record) this.restoreSnapshot(record);
      return;
    }
    const found: Array<[number, string, Entry]> = [];
    for (const name of cache.list("tenants")) {
      const slug = name.endsWith(".json") ? name.slice(0, -5) : "";
      if (!validSlug(slug)) continue;
      const entry = new Entry(0);
      if (this.fromCache(slug, entry)) found.push([entry.confirmed ?? 0, slug, entry]);
    }
    found.sort((a, b) => a[0] - b[0]);
    for (const [, slug, entry] of found.slice(-this.maxTenants)) {
      entry.used = ++this.tick;
      this.tenants.set(slug, entry);
    }
    if (found.length) this.log.info?.(`flagops: ${Math.min(found.length, this.maxTenants)} tenant(s) loaded from ${cache.root}`);
  }

  private restoreSnapshot(record: CacheRecord): void {
    try {
      const snapshot = checkSnapshot(record.document, this.environment);
      const v = validatorsOf(record);
      const digest = typeof record.digest === "string" ? record.digest : null;
      this.snap = { value: snapshot, etag: v.etag ?? null, lastModified: v.lastModified ?? null, confirmed: v.confirmed ?? null, digest, missing: false };
      if (snapshot.revision) this.revision ??= snapshot.revision;
      this.log.info?.(`flagops: the snapshot of ${snapshot.rows.size} tenant(s) loaded from ${this.cache!.root}`);
    } catch {
      // a bad cached snapshot is ignored
    }
  }

  // ------------------------------------------------------------------ status and lifecycle

  /** When the store last vouched for data: for data the head vouches for, the head's 304s count too. */
  private freshness(confirmed: number | null, vouched: boolean): number | null {
    const at = this.head.confirmed;
    return vouched && this.headState === "present" && at !== null ? Math.max(confirmed ?? 0, at) : confirmed;
  }

  private entryConfirmed(entry: Entry): number | null {
    const key = contentKey(this.head.value);
    return this.freshness(entry.confirmed, key !== undefined && entry.checkedUnder === key);
  }

  private snapVouched(): boolean {
    const digest = this.head.value?.snapshot;
    return digest != null && digest === this.snap.digest;
  }

  status(): Status {
    const now = Date.now();
    let tenants = 0;
    let missing = 0;
    let oldest: number | null = null;
    if (this.allTenants) {
      const snap = this.snap.value;
      tenants = snap?.rows.size ?? 0;
      if (snap) oldest = this.freshness(this.snap.confirmed, this.snapVouched()) ?? 0;
    } else {
      for (const entry of this.tenants.values()) {
        if (entry.flags === null) {
          missing++;
          continue;
        }
        tenants++;
        const c = this.entryConfirmed(entry) ?? 0;
        oldest = oldest === null ? c : Math.min(oldest, c);
      }
    }
    const ageMs = oldest === null ? null : Math.max(0, now - oldest);
    const stale = this.streak > 0 || (this.staleAfter !== null && ageMs !== null && ageMs > this.staleAfter);
    return {
      environment: this.environment, mode: this.allTenants ? "snapshot" : "tenant", tenants, missing,
      lastSuccess: this.lastSuccess, lastError: this.lastError, lastErrorAt: this.lastErrorAt, failures: this.streak,
      ageMs, stale, revision: this.revision, sequence: this.head.value?.sequence ?? null, off: [...this.off],
      head: this.headState, refreshing: this.timer !== null && !this.closed, fetched: this.fetched,
      notModified: this.notModified, requests: this.requests,
    };
  }

  /** Stop the background refresh and finish the cache writes; reads keep answering from memory. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopped.abort();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await within<unknown>(this.cycling ?? Promise.resolve(), Date.now() + this.timeoutMs + 1000).catch(() => undefined);
    await this.cache?.flush();
  }

  toString(): string {
    return `FlagClient(${this.where}, environment=${this.environment})`;
  }
}

/**
 * What the held bundles are validated against: the revision and the snapshot digest (an interim
 * kill head keeps both: its `off` needs no revalidation), or the sequence when a null or dirty
 * revision without a snapshot cannot tell two contents apart.
 */
function contentKey(head: Head | null): string | undefined {
  if (head === null) return undefined;
  if (head.snapshot !== null) return `${head.revision}|${head.snapshot}`;
  if (head.revision !== null && !head.revision.endsWith("-dirty")) return head.revision;
  return `#${head.sequence}`;
}

/** `promise`, or undefined once `deadline` (epoch ms) passed; never rejects. */
function within<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) return Promise.resolve(undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, remaining, undefined);
    timer.unref();
  });
  return Promise.race([promise.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
