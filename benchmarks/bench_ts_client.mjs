// The TypeScript client's costs, measured in Node (driven by bench_ts_client.py, which prints them
// beside the Python client's): one isEnabledCached call, the requests of a refresh when nothing
// changed (with a head, and without one), and loading a whole-environment snapshot.
//
//   node benchmarks/bench_ts_client.mjs --base URL --store DIR --tenants N --snapshot URL [--number N] [--repeat R]
//
// Prints one JSON object.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { FlagClient } from "../clients/typescript/dist/index.js";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" }, // the bundles and head.json over HTTP
    store: { type: "string" }, // the same store's directory (head.json is removed for the no-head case)
    snapshot: { type: "string" }, // a snapshot.json URL
    env: { type: "string", default: "production" },
    tenants: { type: "string", default: "1000" }, // bundles tenant-00000 ... in the store
    number: { type: "string", default: "2000000" },
    repeat: { type: "string", default: "5" },
  },
});
const number = Number(args.number);
const repeat = Number(args.repeat);
const quiet = { warn: () => {}, info: () => {} };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median nanoseconds per call over `repeat` runs of `number` calls. */
function nsPerCall(fn) {
  fn(number / 10); // warm up the JIT
  const runs = [];
  for (let r = 0; r < repeat; r++) {
    const started = process.hrtime.bigint();
    fn(number);
    runs.push(Number(process.hrtime.bigint() - started) / number);
  }
  return median(runs);
}

/** Median requests and milliseconds of one refresh when nothing changed. */
async function refreshCost(client) {
  const requests = [];
  const ms = [];
  for (let r = 0; r < repeat; r++) {
    const before = client.status().requests;
    const started = performance.now();
    if (!(await client.refresh())) throw new Error(`refresh failed: ${client.status().lastError}`);
    ms.push(performance.now() - started);
    requests.push(client.status().requests - before);
  }
  return { requests: median(requests), ms: median(ms) };
}

const out = { node: process.version, number, repeat };
let sink = 0; // keeps the loops' results alive

// ---- tenant mode: every tenant of the store held, over HTTP
const client = new FlagClient({ baseUrl: args.base, environment: args.env, refreshIntervalMs: null, logger: quiet,
  maxTenants: 1_000_000, revalidateRate: 1e9, timeoutMs: 10_000 });
const slugs = Array.from({ length: Number(args.tenants) }, (_, i) => `tenant-${String(i).padStart(5, "0")}`);
let started = performance.now();
for (const slug of slugs) if ((await client.flags(slug)) === null) throw new Error(`no bundle for ${slug}`);
out.tenants = slugs.length;
out.first_load_ms = performance.now() - started;
const keys = Object.keys(await client.flags(slugs[0]));
out.flags = keys.length;
const pairs = Array.from({ length: 4096 }, (_, i) => [slugs[(i * 7919) % slugs.length], keys[(i * 104729) % keys.length]]);
const pairSlugs = pairs.map((p) => p[0]);
const pairKeys = pairs.map((p) => p[1]);
out.cached_ns = nsPerCall((n) => {
  for (let i = 0; i < n; i++) sink += client.isEnabledCached(pairKeys[i & 4095], pairSlugs[i & 4095], false) ? 1 : 0;
});
out.cached_unknown_flag_ns = nsPerCall((n) => {
  for (let i = 0; i < n; i++) sink += client.isEnabledCached("no_such_flag", pairSlugs[i & 4095], true) ? 1 : 0;
});
// For scale: a plain object lookup of the same pairs.
const plain = Object.fromEntries(await Promise.all(slugs.map(async (s) => [s, await client.flags(s)])));
out.plain_lookup_ns = nsPerCall((n) => {
  for (let i = 0; i < n; i++) sink += plain[pairSlugs[i & 4095]][pairKeys[i & 4095]] ? 1 : 0;
});
await client.refresh(); // the first head vouches for the bundles loaded before it was known
const withHead = await refreshCost(client);
out.refresh_head_requests = withHead.requests;
out.refresh_head_ms = withHead.ms;

// ---- the same store without a head (an older store): every held bundle revalidated
rmSync(join(args.store, args.env, "head.json"));
await client.refresh();
const noHead = await refreshCost(client);
out.refresh_nohead_requests = noHead.requests;
out.refresh_nohead_ms = noHead.ms;
await client.close();

// ---- snapshot mode: construction to the first answer, then lookups
const loads = [];
let snap;
for (let r = 0; r < Math.min(repeat, 3); r++) {
  await snap?.close();
  started = performance.now();
  snap = new FlagClient({ baseUrl: args.base, environment: args.env, refreshIntervalMs: null, logger: quiet,
    allTenants: true, snapshotUrl: args.snapshot, timeoutMs: 30_000 });
  const first = await snap.flags("tenant-00000");
  loads.push(performance.now() - started);
  if (first === null) throw new Error(`no snapshot: ${snap.status().lastError}`);
}
out.snapshot_load_ms = median(loads);
out.snapshot_first_load_ms = loads[0];
out.snapshot_tenants = snap.status().tenants;
const snapSlugs = Array.from({ length: 4096 }, (_, i) => `tenant-${String((i * 7919) % out.snapshot_tenants).padStart(5, "0")}`);
const snapKeyList = Object.keys(await snap.flags("tenant-00000"));
out.snapshot_flags = snapKeyList.length;
const snapPairKeys = snapSlugs.map((_, i) => snapKeyList[(i * 104729) % snapKeyList.length]);
out.snapshot_cached_ns = nsPerCall((n) => {
  for (let i = 0; i < n; i++) sink += snap.isEnabledCached(snapPairKeys[i & 4095], snapSlugs[i & 4095], false) ? 1 : 0;
});
global.gc?.();
out.heap_mb = process.memoryUsage().heapUsed / 1e6;
await snap.close();
out.sink = sink;
console.log(JSON.stringify(out));
