/**
 * Checks for the documents the client reads (schema/bundle, head and snapshot): a fetched or
 * cached document replaces the one in use only once it passed every check here. No JSON Schema
 * implementation at run time; the same rules as client/flagops_client/documents.py.
 */

import { AXES, type Flag } from "./evaluation.js";

export const SCHEMA_VERSION = 1;
export const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const KEY = /^[a-z][a-z0-9_]{1,63}$/;
export const ENVIRONMENT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const REVISION = /^[0-9a-f]{40}(-dirty)?$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const STATES = new Set(["off", "on", "targeted", "rollout"]);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A document that must not replace the one in use. */
export class DocumentError extends Error {
  override name = "DocumentError";
}

export type Flags = Readonly<Record<string, boolean>>;
/** rules.json: every flag normalised, for tenants that have no bundle yet. */
export type Rules = Readonly<Record<string, Flag>>;

export interface Head {
  environment: string;
  sequence: number;
  revision: string | null;
  off: readonly string[];
  snapshot: string | null;
  publishedAt: string;
}

/** Every tenant of an environment: one contiguous bitset table, a row per tenant. */
export interface Snapshot {
  revision: string | null;
  flags: readonly string[];
  index: ReadonlyMap<string, number>;
  rows: ReadonlyMap<string, number>; // slug -> byte offset of its row in bits
  bits: Uint8Array;
  width: number; // bytes per row
}

export function validSlug(value: unknown): value is string {
  return typeof value === "string" && SLUG.test(value);
}

export function parseJson(data: Uint8Array | string): unknown {
  try {
    const text = typeof data === "string" ? data : new TextDecoder("utf-8", { fatal: true }).decode(data);
    return JSON.parse(text);
  } catch (err) {
    throw new DocumentError(`not JSON (${(err as Error).message})`);
  }
}

function isObject(doc: unknown): doc is Record<string, unknown> {
  return typeof doc === "object" && doc !== null && !Array.isArray(doc);
}

function header(doc: unknown, environment: string): Record<string, unknown> {
  if (!isObject(doc)) throw new DocumentError("not a JSON object");
  if (doc.schemaVersion !== SCHEMA_VERSION) {
    throw new DocumentError(`schemaVersion ${JSON.stringify(doc.schemaVersion)}, expected ${SCHEMA_VERSION}`);
  }
  if (doc.environment !== environment) {
    throw new DocumentError(`environment ${JSON.stringify(doc.environment)}, expected ${JSON.stringify(environment)}`);
  }
  return doc;
}

function revisionOf(doc: Record<string, unknown>): string | null {
  const revision = doc.revision ?? null;
  if (revision !== null && (typeof revision !== "string" || !REVISION.test(revision))) {
    throw new DocumentError(`revision ${JSON.stringify(revision)} is not a commit`);
  }
  return revision;
}

/** The `{key: boolean}` of `<env>/tenants/<tenant>.json`. */
export function checkBundle(doc: unknown, environment: string, tenant: string): Flags {
  const d = header(doc, environment);
  if (d.tenant !== tenant) throw new DocumentError(`tenant ${JSON.stringify(d.tenant)}, expected ${JSON.stringify(tenant)}`);
  const flags = d.flags;
  if (!isObject(flags)) throw new DocumentError("flags is not an object");
  const out: Record<string, boolean> = Object.create(null);
  for (const [key, value] of Object.entries(flags)) {
    if (typeof value !== "boolean") throw new DocumentError(`flag ${JSON.stringify(key)} is ${JSON.stringify(value)}, not a boolean`);
    if (!KEY.test(key)) throw new DocumentError(`flag key ${JSON.stringify(key)} is not a valid key`);
    out[key] = value;
  }
  return Object.freeze(out);
}

/** `<env>/rules.json`: each flag with its key, state, pct and every scope axis. */
export function checkRules(doc: unknown, environment: string): Rules {
  const d = header(doc, environment);
  const flags = d.flags;
  if (!isObject(flags)) throw new DocumentError("flags is not an object");
  const out: Record<string, Flag> = Object.create(null);
  for (const [key, flag] of Object.entries(flags)) {
    if (!KEY.test(key)) throw new DocumentError(`flag key ${JSON.stringify(key)} is not a valid key`);
    if (!isObject(flag) || typeof flag.state !== "string" || !STATES.has(flag.state)) {
      throw new DocumentError(`flag ${JSON.stringify(key)}: state missing or unknown`);
    }
    const pct = flag.pct;
    if (typeof pct !== "number" || !Number.isInteger(pct) || pct < 0 || pct > 100) {
      throw new DocumentError(`flag ${JSON.stringify(key)}: pct ${JSON.stringify(pct)} is not an integer 0..100`);
    }
    const scope = flag.scope;
    if (!isObject(scope)) throw new DocumentError(`flag ${JSON.stringify(key)}: scope is not an object`);
    const axes: Record<string, string[]> = {};
    for (const axis of AXES) {
      const values = scope[axis];
      if (!Array.isArray(values) || !values.every((v) => typeof v === "string")) {
        throw new DocumentError(`flag ${JSON.stringify(key)}: scope.${axis} is not a list of strings`);
      }
      axes[axis] = [...values];
    }
    out[key] = Object.freeze({ key, state: flag.state, pct, scope: axes });
  }
  return Object.freeze(out);
}

/** `<env>/head.json`, the change signal. */
export function checkHead(doc: unknown, environment: string): Head {
  const d = header(doc, environment);
  const sequence = d.sequence;
  if (typeof sequence !== "number" || !Number.isSafeInteger(sequence) || sequence < 0) {
    throw new DocumentError(`sequence ${JSON.stringify(sequence)} is not a non-negative integer`);
  }
  const off = d.off;
  if (!Array.isArray(off) || !off.every((k) => typeof k === "string" && KEY.test(k))) {
    throw new DocumentError("off is not a list of flag keys");
  }
  const snapshot = d.snapshot ?? null;
  if (snapshot !== null && (typeof snapshot !== "string" || !DIGEST.test(snapshot))) {
    throw new DocumentError(`snapshot ${JSON.stringify(snapshot)} is not a sha256 digest`);
  }
  const publishedAt = typeof d.publishedAt === "string" ? d.publishedAt : "";
  return { environment, sequence, revision: revisionOf(d), off: Object.freeze([...off]), snapshot, publishedAt };
}

/** `<env>/snapshot.json`: every bitset decoded and sized before the snapshot may be used. */
export function checkSnapshot(doc: unknown, environment: string): Snapshot {
  const d = header(doc, environment);
  const flags = d.flags;
  if (!Array.isArray(flags) || !flags.every((k) => typeof k === "string" && KEY.test(k))) {
    throw new DocumentError("flags is not a list of flag keys");
  }
  const index = new Map<string, number>();
  flags.forEach((key: string, i) => index.set(key, i));
  if (index.size !== flags.length) throw new DocumentError("flags holds a key twice");
  const tenants = d.tenants;
  if (!isObject(tenants)) throw new DocumentError("tenants is not an object");
  const width = Math.ceil(flags.length / 8);
  const encoded = 4 * Math.ceil(width / 3);
  const slugs = Object.keys(tenants);
  const bits = Buffer.alloc(slugs.length * width);
  const rows = new Map<string, number>();
  let offset = 0;
  for (const slug of slugs) {
    const value = tenants[slug];
    if (!SLUG.test(slug)) throw new DocumentError(`tenant ${JSON.stringify(slug)} is not a valid slug`);
    if (typeof value !== "string" || value.length !== encoded || !BASE64.test(value) || decodedLength(value) !== width) {
      throw new DocumentError(`tenant ${slug}: not the base64 of ${width} byte(s)`);
    }
    // Decoded straight into the table: no buffer per tenant.
    const written = bits.write(value, offset, width, "base64");
    if (written !== width) throw new DocumentError(`tenant ${slug}: ${written} byte(s), expected ${width}`);
    rows.set(slug, offset);
    offset += width;
  }
  return { revision: revisionOf(d), flags: Object.freeze([...flags]), index, rows, bits, width };
}

function decodedLength(base64: string): number {
  const padding = base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0;
  return (base64.length / 4) * 3 - padding;
}

/** One tenant's flags out of a snapshot (a fresh object). */
export function snapshotFlags(snapshot: Snapshot, slug: string): Record<string, boolean> | null {
  const row = snapshot.rows.get(slug);
  if (row === undefined) return null;
  const out: Record<string, boolean> = {};
  snapshot.flags.forEach((key, i) => {
    out[key] = (snapshot.bits[row + (i >> 3)]! & (1 << (i & 7))) !== 0;
  });
  return out;
}
