// Test fixtures: stores written in the protocol's format, flagops itself, and a small HTTP
// server over a store directory (conditional GETs, request counts, injected faults).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const ENV = "production";
export const FLAGOPS = join(ROOT, ".venv/bin/flagops");
export const PYTHON = join(ROOT, ".venv/bin/python");

/** Compact, keys sorted, one trailing newline: how publish writes every document. */
export function canonical(value) {
  const sort = (v) => (Array.isArray(v) ? v.map(sort) : v && typeof v === "object"
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])])) : v);
  return `${JSON.stringify(sort(value))}\n`;
}

export function tempDir(t, name = "flagops-ts-") {
  const dir = mkdtempSync(join(process.env.FLAGOPS_TEST_TMP ?? tmpdir(), name));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function put(root, name, body) {
  const path = join(root, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, body);
  // A rename, as a store replaces an object: file:// readers see a new identity.
  execFileSync("mv", [`${path}.tmp`, path]);
}

export const bundleDoc = (tenant, flags, env = ENV) => canonical({ schemaVersion: 1, environment: env, tenant, flags });

export function snapshotDoc(tenants, env = ENV, revision = null) {
  const keys = [...new Set(Object.values(tenants).flatMap((f) => Object.keys(f)))].sort();
  const width = Math.ceil(keys.length / 8);
  const rows = {};
  for (const [slug, flags] of Object.entries(tenants)) {
    const bytes = Buffer.alloc(width);
    keys.forEach((key, i) => { if (flags[key]) bytes[i >> 3] |= 1 << (i & 7); });
    rows[slug] = bytes.toString("base64");
  }
  return canonical({ schemaVersion: 1, environment: env, flags: keys, revision, tenants: rows });
}

const AXES = ["plans", "tenantSlugs", "partnerSlugs", "environments"];
/** rules.json from `{key: {state, pct?, scope?}}`, normalised as compile writes it. */
export const rulesDoc = (flags, env = ENV) => canonical({ schemaVersion: 1, environment: env,
  flags: Object.fromEntries(Object.entries(flags).map(([key, f]) => [key, { state: f.state, pct: f.pct ?? 0,
    scope: Object.fromEntries(AXES.map((a) => [a, f.scope?.[a] ?? []])) }])) });

export const digest = (text) => `sha256:${createHash("sha256").update(text).digest("hex")}`;
export const rev = (n) => String(n).padStart(40, "0").replace(/^0/, "a");

export function headDoc({ sequence, revision = rev(sequence), off = [], snapshot = null, env = ENV }) {
  return canonical({ schemaVersion: 1, environment: env, sequence, revision, off: [...off].sort(), snapshot,
    publishedAt: "2026-12-01T21:30:00Z" });
}

/** A store directory under `root`: tenants' bundles, optionally a snapshot and a head. */
export function writeStore(root, tenants, { head, snapshot = false, rules, env = ENV } = {}) {
  for (const [slug, flags] of Object.entries(tenants)) put(root, `${env}/tenants/${slug}.json`, bundleDoc(slug, flags, env));
  if (rules) put(root, `${env}/rules.json`, rulesDoc(rules, env));
  let snap = null;
  if (snapshot) {
    snap = snapshotDoc(tenants, env, head ? rev(head.sequence) : null);
    put(root, `${env}/snapshot.json`, snap);
  }
  if (head) put(root, `${env}/head.json`, headDoc({ snapshot: snap ? digest(snap) : null, ...head, env }));
  return pathToFileURL(root).href;
}

/** A logger that keeps what it was told. */
export function recorder() {
  const lines = { warn: [], info: [], debug: [] };
  return { lines, warn: (m) => lines.warn.push(m), info: (m) => lines.info.push(m), debug: (m) => lines.debug.push(m) };
}

/** Serves a store directory over HTTP with strong ETags; `fault` injects failures. */
export async function serve(t, root) {
  const counts = new Map();
  const state = { fault: null, requests: 0, counts, etags: true };
  const server = createServer((req, res) => {
    state.requests++;
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname).replace(/^\/store\//, "");
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const fault = typeof state.fault === "function" ? state.fault(path) : state.fault;
    if (fault === "hang") return; // never answers (the client's deadline must end it)
    if (fault === "slow-body") {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("{");
      return; // headers and a first byte, then nothing
    }
    if (fault === 500) {
      res.writeHead(500).end("boom");
      return;
    }
    const file = join(root, path);
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const body = fault === "corrupt" ? Buffer.from("{\"schemaVersion\":1,") : readFileSync(file);
    if (!state.etags) { // a plain file server: Last-Modified only
      const modified = new Date(Math.floor(statSync(file).mtimeMs / 1000) * 1000);
      const since = Date.parse(req.headers["if-modified-since"] ?? "");
      if (!Number.isNaN(since) && modified.getTime() <= since) {
        res.writeHead(304, { "last-modified": modified.toUTCString() }).end();
        return;
      }
      res.writeHead(200, { "last-modified": modified.toUTCString(), "content-length": body.length }).end(body);
      return;
    }
    const etag = `"${createHash("sha256").update(body).digest("hex").slice(0, 16)}"`;
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    res.writeHead(200, { etag, "content-type": "application/json", "content-length": body.length }).end(body);
  });
  const sockets = new Set();
  server.on("connection", (s) => { sockets.add(s); s.on("close", () => sockets.delete(s)); });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  state.url = `http://127.0.0.1:${server.address().port}/store`;
  state.stop = () => new Promise((ok) => { for (const s of sockets) s.destroy(); server.close(() => ok()); });
  t.after(() => state.stop());
  return state;
}

/** Runs flagops; throws with its output when it fails. */
export function flagops(args, { cwd, env } = {}) {
  return execFileSync(FLAGOPS, args, { cwd, env: env ?? process.env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export const TENANTS_YAML = `- {id: "ten-001", slug: acme, plan: enterprise}
- {id: "ten-002", slug: globex, plan: free, partnerSlug: northwind}
- {id: "ten-003", slug: initech, plan: business}
- {id: "ten-004", slug: umbrella, plan: starter, partnerSlug: northwind}
`;
export const SLUGS = ["acme", "globex", "initech", "umbrella"];

/** A repository with four flags and four tenants, compiled by flagops into `<dir>/dist`. */
export function compileRepo(dir, { billingPct = 50, alwaysOn = "on" } = {}) {
  const repo = join(dir, "repo");
  mkdirSync(join(repo, "flags"), { recursive: true });
  mkdirSync(join(repo, "tenants"), { recursive: true });
  writeFileSync(join(repo, "tenants", `${ENV}.yaml`), TENANTS_YAML);
  const flags = {
    new_billing: `state: rollout\npct: ${billingPct}\n`,
    dark_mode: "state: targeted\nscope:\n  plans: [enterprise]\n",
    partner_portal: "state: targeted\nscope:\n  partnerSlugs: [northwind]\n",
    always_on: `state: "${alwaysOn}"\n`,
  };
  for (const [key, body] of Object.entries(flags)) {
    writeFileSync(join(repo, "flags", `${key}.yaml`), `key: ${key}\ndescription: ${key} for tests\n${body}`);
  }
  const dist = join(dir, "dist");
  flagops(["compile", "--out", dist, "--env", ENV], { cwd: repo });
  return { repo, dist };
}

export const readBundle = (dist, slug) => JSON.parse(readFileSync(join(dist, ENV, "tenants", `${slug}.json`), "utf8")).flags;
