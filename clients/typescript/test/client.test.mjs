// FlagClient against file:// stores and a local HTTP server: reads, conditional refresh, the
// head (change signal), snapshot mode, rejected documents, outages and restarts from cacheDir.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { FlagClient, bucket } from "../dist/index.js";
import {
  ENV, bundleDoc, digest, headDoc, put, recorder, rev, rulesDoc, serve, snapshotDoc, tempDir, writeStore,
} from "./helpers.mjs";

const TENANTS = {
  acme: { dark_mode: true, new_billing: false, always_on: true },
  globex: { dark_mode: false, new_billing: true, always_on: true },
};

function client(t, baseUrl, options = {}) {
  const c = new FlagClient({ baseUrl, environment: ENV, refreshIntervalMs: null, timeoutMs: 1000,
    logger: recorder(), revalidateRate: 1000, ...options });
  t.after(() => c.close());
  return c;
}

test("reads a tenant's bundle, answers from memory, null and defaults when there is none", async (t) => {
  const url = writeStore(tempDir(t), TENANTS, { head: { sequence: 1 } });
  const c = client(t, url);
  assert.deepEqual(await c.flags("acme"), TENANTS.acme);
  assert.equal(await c.isEnabled("dark_mode", { tenant: "acme" }), true);
  assert.equal(await c.isEnabled("dark_mode", { tenant: "globex", default: true }), false);
  assert.equal(await c.isEnabled("no_such_flag", { tenant: "acme", default: true }), true);
  assert.equal(c.isEnabledCached("dark_mode", "acme", false), true);
  assert.equal(c.isEnabledCached("no_such_flag", "acme", true), true);
  assert.equal(await c.flags("nobody"), null);
  assert.equal(await c.isEnabled("always_on", { tenant: "nobody", default: true }), true);
  assert.equal(await c.flags("Not A Slug"), null);
  assert.deepEqual(await c.resolve("dark_mode", { tenant: "nobody" }), { value: false, reason: "DEFAULT", message: "no bundle for nobody yet" });
  assert.equal((await c.resolve("x_y", { tenant: "acme" })).errorCode, "FLAG_NOT_FOUND");
  assert.equal((await c.resolve("dark_mode", { tenant: "../etc" })).errorCode, "INVALID_CONTEXT");
  // Reads never throw, whatever they are given.
  assert.equal(c.isEnabledCached(undefined, null, true), true);
  assert.equal(await c.isEnabled("dark_mode", null), false);
  const s = c.status();
  assert.equal(s.tenants, 2);
  assert.equal(s.missing, 1);
  assert.equal(s.sequence, 1);
  assert.equal(s.head, "present");
});

test("isEnabledCached answers the default for an unknown tenant and loads it for the next read", async (t) => {
  const url = writeStore(tempDir(t), TENANTS, { head: { sequence: 1 } });
  const c = client(t, url);
  assert.equal(c.isEnabledCached("dark_mode", "acme", false), false);
  for (let i = 0; i < 100 && !c.isEnabledCached("dark_mode", "acme", false); i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(c.isEnabledCached("dark_mode", "acme", false), true);
});

test("with a head, a refresh with nothing changed is one conditional request; a new revision revalidates", async (t) => {
  const dir = tempDir(t);
  writeStore(dir, TENANTS, { head: { sequence: 1 } });
  const srv = await serve(t, dir);
  const c = client(t, srv.url);
  await c.flags("acme");
  await c.flags("globex");
  srv.counts.clear();
  const before = c.status().requests;
  assert.equal(await c.refresh(), true); // the first refresh revalidates what was loaded before the head was known
  srv.counts.clear();
  const base = c.status().requests;
  assert.equal(await c.refresh(), true);
  assert.equal(await c.refresh(), true);
  assert.equal(c.status().requests - base, 2);
  assert.deepEqual([...srv.counts], [[`${ENV}/head.json`, 2]]);
  assert.ok(c.status().notModified >= 2);
  assert.ok(before > 0);

  // A publish: the bundles first, the head last. The head's 304s alone never show the change.
  put(dir, `${ENV}/tenants/acme.json`, bundleDoc("acme", { ...TENANTS.acme, new_billing: true }));
  assert.equal(await c.refresh(), true);
  assert.equal(c.isEnabledCached("new_billing", "acme"), false);
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 2 }));
  srv.counts.clear();
  assert.equal(await c.refresh(), true);
  assert.equal(c.isEnabledCached("new_billing", "acme"), true);
  assert.deepEqual(Object.fromEntries(srv.counts), {
    [`${ENV}/head.json`]: 1, [`${ENV}/tenants/acme.json`]: 1, [`${ENV}/tenants/globex.json`]: 1,
  });
  assert.equal(c.status().revision, rev(2));
});

test("revalidations after a head change are paced, never one burst", async (t) => {
  const dir = tempDir(t);
  const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`t${i}`, { a_flag: i % 2 === 0 }]));
  writeStore(dir, many, { head: { sequence: 1 } });
  const c = client(t, `${writeStore(dir, many)}`, { revalidateRate: 100 });
  for (const slug of Object.keys(many)) await c.flags(slug);
  await c.refresh();
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 2 }));
  const started = performance.now();
  await c.refresh();
  // 12 bundles at 100/s: at least 110 ms between the first and the last.
  assert.ok(performance.now() - started >= 105, `took ${performance.now() - started} ms`);
});

test("the head's off keys read false for every tenant at once; a lower sequence is never applied", async (t) => {
  const dir = tempDir(t);
  writeStore(dir, TENANTS, { head: { sequence: 5 } });
  const c = client(t, writeStore(dir, TENANTS));
  assert.equal(await c.isEnabled("always_on", { tenant: "acme" }), true);
  await c.flags("globex");
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 6, revision: rev(5), off: ["always_on"] }));
  const requests = c.status().requests;
  await c.refresh();
  // The head, then the held bundles the first head had not vouched for yet.
  assert.ok(c.status().requests - requests <= 3);
  assert.equal(c.isEnabledCached("always_on", "acme", true), false);
  assert.equal(c.isEnabledCached("always_on", "globex", true), false);
  assert.equal((await c.flags("acme")).always_on, false);
  assert.deepEqual(await c.resolve("always_on", { tenant: "acme", default: true }), { value: false, reason: "STATIC" });
  assert.deepEqual(c.status().off, ["always_on"]);
  // A stale copy of an older head (a cache in front of the store) must not bring the flag back.
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 4 }));
  assert.equal(await c.refresh(), false);
  assert.equal(c.isEnabledCached("always_on", "acme", true), false);
  assert.match(c.status().lastError, /sequence 4 is lower than 6/);
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 7 }));
  assert.equal(await c.refresh(), true);
  assert.equal(c.isEnabledCached("always_on", "acme", false), true);
});

test("a kill in the head applies on the very first read", async (t) => {
  const url = writeStore(tempDir(t), TENANTS, { head: { sequence: 3, off: ["dark_mode"] } });
  const c = client(t, url);
  assert.equal(await c.isEnabled("dark_mode", { tenant: "acme", default: true }), false);
  assert.equal(c.isEnabledCached("dark_mode", "acme", true), false);
});

test("a store without a head: every held bundle revalidated each interval, one warning", async (t) => {
  const dir = tempDir(t);
  writeStore(dir, TENANTS);
  const srv = await serve(t, dir);
  const log = recorder();
  const c = client(t, srv.url, { logger: log });
  await c.flags("acme");
  await c.flags("globex");
  srv.counts.clear();
  assert.equal(await c.refresh(), true);
  assert.equal(await c.refresh(), true);
  assert.deepEqual(Object.fromEntries(srv.counts), {
    [`${ENV}/head.json`]: 2, [`${ENV}/tenants/acme.json`]: 2, [`${ENV}/tenants/globex.json`]: 2,
  });
  assert.equal(log.lines.warn.filter((m) => m.includes("head.json")).length, 1);
  assert.equal(c.status().head, "absent");
  put(dir, `${ENV}/tenants/acme.json`, bundleDoc("acme", { ...TENANTS.acme, dark_mode: false }));
  await c.refresh();
  assert.equal(c.isEnabledCached("dark_mode", "acme", true), false);
});

test("corrupt, wrong-tenant, wrong-environment and non-boolean documents never replace good flags", async (t) => {
  const dir = tempDir(t);
  const url = writeStore(dir, TENANTS, { head: { sequence: 1 } });
  const log = recorder();
  const c = client(t, url, { logger: log });
  await c.flags("acme");
  await c.refresh();
  const bad = [
    "{\"schemaVersion\":1,",
    bundleDoc("globex", TENANTS.acme),
    bundleDoc("acme", TENANTS.acme, "staging"),
    bundleDoc("acme", { dark_mode: "yes" }),
    bundleDoc("acme", { "Bad-Key": true }),
    JSON.stringify({ schemaVersion: 2, environment: ENV, tenant: "acme", flags: {} }),
    JSON.stringify({ schemaVersion: true, environment: ENV, tenant: "acme", flags: {} }),
    "[]",
    "\u00ff\u00fe",
  ];
  for (const [i, body] of bad.entries()) {
    put(dir, `${ENV}/tenants/acme.json`, body);
    put(dir, `${ENV}/head.json`, headDoc({ sequence: 2 + i }));
    assert.equal(await c.refresh(), false, body);
    assert.deepEqual(await c.flags("acme"), TENANTS.acme, body);
  }
  assert.equal(log.lines.warn.filter((m) => m.includes("rejected tenants/acme.json")).length, 1);
  // A corrupt head is rejected too, and the kill list in use stays.
  put(dir, `${ENV}/tenants/acme.json`, bundleDoc("acme", TENANTS.acme));
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 20, off: ["dark_mode"] }));
  assert.equal(await c.refresh(), true);
  assert.equal(log.lines.info.filter((m) => m.includes("tenants/acme.json is valid again")).length, 1);
  for (const body of ["{", headDoc({ sequence: 21, off: ["Not A Key"] }), headDoc({ sequence: 21, env: "staging" })]) {
    put(dir, `${ENV}/head.json`, body);
    assert.equal(await c.refresh(), false);
    assert.equal(c.isEnabledCached("dark_mode", "acme", true), false);
  }
});

test("an outage: last known good, one warning per failure streak, stale status, recovery", async (t) => {
  const dir = tempDir(t);
  writeStore(dir, TENANTS, { head: { sequence: 1 } });
  const srv = await serve(t, dir);
  const log = recorder();
  const c = client(t, srv.url, { logger: log });
  assert.deepEqual(await c.flags("acme"), TENANTS.acme);
  srv.fault = 500;
  assert.equal(await c.refresh(), false);
  assert.equal(await c.refresh(), false);
  assert.deepEqual(await c.flags("acme"), TENANTS.acme);
  assert.equal(c.isEnabledCached("dark_mode", "acme"), true);
  assert.equal(log.lines.warn.filter((m) => m.includes("cannot read flags")).length, 1);
  assert.equal(c.status().stale, true);
  assert.equal(c.status().failures, 2);
  assert.match(c.status().lastError, /HTTP 500/);
  srv.fault = "corrupt"; // the store answers, with garbage: rejected, warned once
  assert.equal(await c.refresh(), false);
  assert.equal(await c.refresh(), false);
  assert.equal(c.isEnabledCached("dark_mode", "acme"), true);
  assert.equal(log.lines.warn.filter((m) => m.includes("rejected head.json")).length, 1);
  srv.fault = null;
  assert.equal(await c.refresh(), true);
  assert.equal(c.status().failures, 0);
  assert.equal(log.lines.info.filter((m) => m.includes("works again")).length, 1);
  // A second streak warns again, once.
  await srv.stop();
  await c.refresh();
  await c.refresh();
  assert.equal(log.lines.warn.filter((m) => m.includes("cannot read flags")).length, 2);
  assert.match(c.status().lastError, /fetch failed|ECONNREFUSED/);
  assert.deepEqual(await c.flags("acme"), TENANTS.acme);
});

test("a first read waits at most timeoutMs, whether the server never answers or stalls mid-body", async (t) => {
  const dir = tempDir(t);
  writeStore(dir, TENANTS, { head: { sequence: 1 } });
  const srv = await serve(t, dir);
  for (const fault of ["hang", "slow-body"]) {
    srv.fault = fault;
    const c = client(t, srv.url, { timeoutMs: 300 });
    const started = performance.now();
    assert.equal(await c.isEnabled("dark_mode", { tenant: "acme", default: true }), true);
    assert.equal(await c.flags("globex"), null);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 2 * 300 + 200, `${fault}: ${elapsed} ms`);
    assert.match(c.status().lastError ?? "", /timed out/);
  }
});

test("cacheDir: a process restarted during an outage starts with its last flags", async (t) => {
  const dir = tempDir(t);
  writeStore(dir, TENANTS, { head: { sequence: 4, off: ["new_billing"] } });
  const srv = await serve(t, dir);
  const cache = join(tempDir(t), "cache");
  const c = client(t, srv.url, { cacheDir: cache });
  await c.flags("acme");
  await c.flags("globex");
  await c.close();
  assert.deepEqual(readdirSync(join(cache, ENV, "tenants")).sort(), ["acme.json", "globex.json"]);
  assert.ok(!readdirSync(join(cache, ENV, "tenants")).some((n) => n.startsWith(".tmp")));
  await srv.stop();
  // A new process, the store down: the last flags at once, the kill included, and never a throw.
  const probe = `
    import { FlagClient } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)};
    const c = new FlagClient({ baseUrl: ${JSON.stringify(srv.url)}, environment: "production", cacheDir: process.argv[1], timeoutMs: 300 });
    const out = { acme: c.isEnabledCached("dark_mode", "acme", false), flags: await c.flags("globex"),
      killed: c.isEnabledCached("new_billing", "globex", true), unknown: await c.isEnabled("dark_mode", { tenant: "hooli", default: true }),
      status: c.status() };
    await c.close();
    console.log(JSON.stringify(out));`;
  const out = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", probe, cache], { encoding: "utf8", timeout: 20000 }));
  assert.equal(out.acme, true);
  assert.deepEqual(out.flags, { ...TENANTS.globex, new_billing: false });
  assert.equal(out.killed, false);
  assert.equal(out.unknown, true);
  assert.equal(out.status.tenants, 2);
  assert.equal(out.status.sequence, 4);
  // A damaged cache file is ignored, never trusted.
  writeFileSync(join(cache, ENV, "tenants", "acme.json"), "{\"cachedAt\":1,\"document\":{\"schemaVersion\":1}}");
  const c2 = client(t, srv.url, { cacheDir: cache, timeoutMs: 200 });
  assert.equal(c2.isEnabledCached("dark_mode", "acme", false), false);
  assert.equal(c2.status().tenants, 1);
});

test("the cache files are the Python client's record format", async (t) => {
  const dir = tempDir(t);
  const url = writeStore(dir, TENANTS, { head: { sequence: 1 } });
  const cache = join(tempDir(t), "cache");
  const c = client(t, url, { cacheDir: cache });
  await c.flags("acme");
  await c.close();
  const record = JSON.parse(readFileSync(join(cache, ENV, "tenants", "acme.json"), "utf8"));
  assert.deepEqual(Object.keys(record).sort(), ["cachedAt", "document", "etag", "lastModified"]);
  assert.deepEqual(record.document, JSON.parse(bundleDoc("acme", TENANTS.acme)));
  assert.ok(Math.abs(record.cachedAt - Date.now() / 1000) < 60);
});

test("memory is bounded: the least recently read tenants are evicted beyond maxTenants", async (t) => {
  const many = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, { a_flag: true }]));
  const c = client(t, writeStore(tempDir(t), many), { maxTenants: 4 });
  for (const slug of Object.keys(many)) {
    await c.flags(slug);
    c.isEnabledCached("a_flag", "t0"); // t0 stays the most recently read
  }
  assert.equal(c.status().tenants, 4);
  assert.equal(c.isEnabledCached("a_flag", "t0", false), true);
  assert.equal(c.isEnabledCached("a_flag", "t9", false), true);
  assert.equal(c.isEnabledCached("a_flag", "t1", false), false);
});

test("snapshot mode: every tenant from one document, fetched again only for a new digest", async (t) => {
  const dir = tempDir(t);
  writeStore(dir, TENANTS, { head: { sequence: 1 }, snapshot: true });
  const srv = await serve(t, dir);
  const c = client(t, srv.url, { allTenants: true });
  assert.deepEqual(await c.flags("acme"), TENANTS.acme);
  assert.equal(c.isEnabledCached("new_billing", "globex"), true);
  assert.equal(c.isEnabledCached("new_billing", "nobody", true), true);
  assert.equal(await c.flags("nobody"), null);
  assert.equal((await c.resolve("dark_mode", { tenant: "nobody" })).reason, "DEFAULT");
  assert.equal(srv.counts.get(`${ENV}/tenants/acme.json`), undefined);
  srv.counts.clear();
  await c.refresh();
  await c.refresh();
  assert.deepEqual([...srv.counts], [[`${ENV}/head.json`, 2]]);
  // A kill through the head: no snapshot download needed.
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 2, revision: rev(1), off: ["always_on"], snapshot: digest(readFileSync(join(dir, ENV, "snapshot.json"))) }));
  srv.counts.clear();
  await c.refresh();
  assert.deepEqual([...srv.counts], [[`${ENV}/head.json`, 1]]);
  assert.equal(c.isEnabledCached("always_on", "acme", true), false);
  // A new snapshot named by the head.
  const next = { ...TENANTS, acme: { ...TENANTS.acme, new_billing: true }, hooli: { dark_mode: true, new_billing: true, always_on: true } };
  writeStore(dir, next, { head: { sequence: 3 }, snapshot: true });
  await c.refresh();
  assert.equal(c.isEnabledCached("new_billing", "acme"), true);
  assert.equal(c.isEnabledCached("dark_mode", "hooli"), true);
  assert.equal(c.status().tenants, 3);
  assert.equal(c.status().mode, "snapshot");
  // A corrupt snapshot (a bitset of the wrong size) is rejected; the last good one stays.
  const broken = JSON.parse(snapshotDoc(next, ENV, rev(4)));
  broken.tenants.acme = "AAAA";
  put(dir, `${ENV}/snapshot.json`, JSON.stringify(broken));
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 4, snapshot: digest(JSON.stringify(broken)) }));
  assert.equal(await c.refresh(), false);
  assert.equal(c.isEnabledCached("new_billing", "acme"), true);
  assert.match(c.status().lastError, /snapshot\.json: tenant acme/);
});

test("snapshot mode restarts from cacheDir and reads through snapshotUrl", async (t) => {
  const dir = tempDir(t);
  const store = tempDir(t);
  writeStore(store, TENANTS, { head: { sequence: 1 }, snapshot: true });
  // The snapshot is private: served elsewhere (a presigned URL or a mirror); the head is public.
  const snapshotFile = join(dir, "private-snapshot.json");
  writeFileSync(snapshotFile, readFileSync(join(store, ENV, "snapshot.json")));
  rmSync(join(store, ENV, "snapshot.json"));
  const srv = await serve(t, store);
  const cache = join(dir, "cache");
  const c = client(t, srv.url, { allTenants: true, cacheDir: cache, snapshotUrl: `file://${snapshotFile}` });
  assert.equal(await c.isEnabled("dark_mode", { tenant: "acme" }), true);
  await c.close();
  await srv.stop();
  const c2 = client(t, srv.url, { allTenants: true, cacheDir: cache, snapshotUrl: "file:///nonexistent/snapshot.json", timeoutMs: 200 });
  assert.equal(c2.isEnabledCached("dark_mode", "acme", false), true);
  assert.deepEqual(await c2.flags("globex"), TENANTS.globex);
  assert.equal(c2.status().sequence, 1);
});

test("invalid options throw at construction; nothing else does", () => {
  for (const baseUrl of ["ftp://example/flags", "file://relative/dir", "http://", "flags/", "", undefined]) {
    assert.throws(() => new FlagClient({ baseUrl, environment: ENV }), TypeError, String(baseUrl));
  }
  assert.throws(() => new FlagClient({ baseUrl: "file:///x", environment: "Prod!" }), TypeError);
  assert.throws(() => new FlagClient({ baseUrl: "file:///x", environment: ENV, timeoutMs: 0 }), RangeError);
  assert.throws(() => new FlagClient({ baseUrl: "file:///x", environment: ENV, maxTenants: 0 }), RangeError);
});

test("a tenant without a bundle is evaluated from rules.json when the read passes its attributes", async (t) => {
  const dir = tempDir(t);
  const rules = {
    dark_mode: { state: "targeted", scope: { plans: ["enterprise"] } },
    new_billing: { state: "rollout", pct: 50 },
    always_on: { state: "on" },
  };
  writeStore(dir, TENANTS, { head: { sequence: 1 }, rules });
  const srv = await serve(t, dir);
  const c = client(t, srv.url);
  const newco = { id: "ten-new", plan: "enterprise" };
  assert.deepEqual(await c.resolve("dark_mode", { tenant: "newco", attributes: newco }), { value: true, reason: "TARGETING_MATCH" });
  assert.equal(await c.isEnabled("dark_mode", { tenant: "newco", attributes: { id: "x", plan: "free" }, default: true }), false);
  assert.equal(await c.isEnabled("new_billing", { tenant: "newco", attributes: newco }), bucket("ten-new", "new_billing") < 50);
  assert.equal((await c.resolve("no_such", { tenant: "newco", attributes: newco })).errorCode, "FLAG_NOT_FOUND");
  assert.equal((await c.resolve("dark_mode", { tenant: "newco", attributes: { plan: "free" } })).errorCode, "INVALID_CONTEXT");
  // A tenant with a bundle is answered from it, whatever the attributes say.
  assert.deepEqual(await c.resolve("dark_mode", { tenant: "globex", attributes: newco }), { value: false, reason: "STATIC" });
  // Nothing changed: the rules cost no request; a new head revalidates them, a kill applies to them.
  await c.refresh();
  srv.counts.clear();
  await c.refresh();
  assert.deepEqual([...srv.counts], [[`${ENV}/head.json`, 1]]);
  put(dir, `${ENV}/rules.json`, rulesDoc({ ...rules, dark_mode: { state: "off" } }));
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 2, off: ["always_on"] }));
  await c.refresh();
  assert.equal(await c.isEnabled("dark_mode", { tenant: "newco", attributes: newco, default: true }), false);
  assert.equal(await c.isEnabled("always_on", { tenant: "newco", attributes: newco, default: true }), false);
  // Corrupt rules are rejected; the last good ones stay.
  put(dir, `${ENV}/rules.json`, JSON.stringify({ schemaVersion: 1, environment: ENV, flags: { dark_mode: { state: "maybe" } } }));
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 3 }));
  assert.equal(await c.refresh(), false);
  assert.match(c.status().lastError, /rules\.json: flag "dark_mode": state/);
  assert.equal((await c.resolve("always_on", { tenant: "newco", attributes: newco })).reason, "TARGETING_MATCH");
});

test("rules.json through rulesUrl (it is private), and from cacheDir after a restart", async (t) => {
  const dir = tempDir(t);
  const url = writeStore(join(dir, "store"), TENANTS, { head: { sequence: 1 } });
  const privateRules = join(dir, "rules.json");
  writeFileSync(privateRules, rulesDoc({ dark_mode: { state: "on" } }));
  const cache = join(dir, "cache");
  const c = client(t, url, { rulesUrl: `file://${privateRules}`, cacheDir: cache });
  assert.equal(await c.isEnabled("dark_mode", { tenant: "newco", attributes: { id: "n" } }), true);
  await c.close();
  rmSync(privateRules);
  const c2 = client(t, url, { rulesUrl: `file://${privateRules}`, cacheDir: cache });
  assert.deepEqual(await c2.resolve("dark_mode", { tenant: "newco", attributes: { id: "n" } }), { value: true, reason: "TARGETING_MATCH" });
});

test("a store without ETags: If-Modified-Since, only once Last-Modified is a second older than the answer", async (t) => {
  const dir = tempDir(t);
  writeStore(dir, TENANTS);
  const old = new Date(Date.now() - 60_000);
  utimesSync(join(dir, ENV, "tenants", "acme.json"), old, old);
  const srv = await serve(t, dir);
  srv.etags = false;
  const c = client(t, srv.url);
  await c.flags("acme");
  const before = c.status().notModified;
  await c.refresh();
  assert.equal(c.status().notModified - before, 1); // the bundle answered 304 (the head is absent)
  // Replaced within the second it is served: Last-Modified cannot validate it, so it is fetched whole.
  put(dir, `${ENV}/tenants/acme.json`, bundleDoc("acme", { ...TENANTS.acme, dark_mode: false }));
  await c.refresh();
  assert.equal(c.isEnabledCached("dark_mode", "acme", true), false);
  put(dir, `${ENV}/tenants/acme.json`, bundleDoc("acme", TENANTS.acme));
  await c.refresh();
  assert.equal(c.isEnabledCached("dark_mode", "acme", false), true);
});
