// The provider through the real OpenFeature server SDK, and the NestJS example as a service.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { OpenFeature } from "@openfeature/server-sdk";

import { FlagClient } from "../dist/index.js";
import { FlagopsProvider } from "../dist/openfeature.js";
import { ENV, headDoc, put, recorder, tempDir, writeStore } from "./helpers.mjs";

const TENANTS = { acme: { jmap_native_v2: true, dark_mode: true }, globex: { jmap_native_v2: false, dark_mode: true } };

test("the provider through the real SDK: values, reasons, variants and error codes", async (t) => {
  const dir = tempDir(t);
  const url = writeStore(dir, TENANTS, { head: { sequence: 1 }, rules: { dark_mode: { state: "targeted", scope: { plans: ["enterprise"] } } } });
  const provider = new FlagopsProvider({ baseUrl: url, environment: ENV, refreshIntervalMs: null, logger: recorder() });
  await OpenFeature.setProviderAndWait("flagops-test", provider);
  t.after(() => OpenFeature.close());
  const client = OpenFeature.getClient("flagops-test");
  assert.equal(client.metadata.providerMetadata.name, "flagops");

  const acme = await client.getBooleanDetails("jmap_native_v2", false, { targetingKey: "acme" });
  assert.deepEqual([acme.value, acme.reason, acme.variant, acme.errorCode], [true, "STATIC", "on", undefined]);
  const globex = await client.getBooleanDetails("jmap_native_v2", true, { targetingKey: "globex" });
  assert.deepEqual([globex.value, globex.reason, globex.variant], [false, "STATIC", "off"]);
  assert.equal(await client.getBooleanValue("jmap_native_v2", false, { targetingKey: "acme" }), true);

  const missingKey = await client.getBooleanDetails("jmap_native_v2", true, {});
  assert.deepEqual([missingKey.value, missingKey.reason, missingKey.errorCode], [true, "ERROR", "TARGETING_KEY_MISSING"]);
  const noFlag = await client.getBooleanDetails("no_such_flag", true, { targetingKey: "acme" });
  assert.deepEqual([noFlag.value, noFlag.reason, noFlag.errorCode], [true, "ERROR", "FLAG_NOT_FOUND"]);
  const noBundle = await client.getBooleanDetails("dark_mode", true, { targetingKey: "hooli" });
  assert.deepEqual([noBundle.value, noBundle.reason, noBundle.errorCode], [true, "DEFAULT", undefined]);
  const byRules = await client.getBooleanDetails("dark_mode", false, { targetingKey: "hooli", id: "ten-9", plan: "enterprise" });
  assert.deepEqual([byRules.value, byRules.reason, byRules.variant], [true, "TARGETING_MATCH", "on"]);
  const noId = await client.getBooleanDetails("dark_mode", true, { targetingKey: "hooli", id: null, plan: "enterprise" });
  assert.deepEqual([noId.value, noId.reason, noId.errorCode], [true, "ERROR", "INVALID_CONTEXT"]);
  const badSlug = await client.getBooleanDetails("dark_mode", true, { targetingKey: "Not/A/Slug" });
  assert.deepEqual([badSlug.value, badSlug.reason, badSlug.errorCode], [true, "ERROR", "INVALID_CONTEXT"]);
  const typed = await client.getStringDetails("dark_mode", "x", { targetingKey: "acme" });
  assert.deepEqual([typed.value, typed.reason, typed.errorCode], ["x", "ERROR", "TYPE_MISMATCH"]);
  assert.equal(await client.getNumberValue("dark_mode", 7, { targetingKey: "acme" }), 7);
  assert.deepEqual(await client.getObjectValue("dark_mode", { a: 1 }, { targetingKey: "acme" }), { a: 1 });

  // A kill through the head reaches the SDK's answers on the next refresh.
  put(dir, `${ENV}/head.json`, headDoc({ sequence: 2, off: ["dark_mode"] }));
  await provider.client.refresh();
  assert.equal(await client.getBooleanValue("dark_mode", true, { targetingKey: "acme" }), false);
});

test("the provider reports STALE when the data is older than two refresh intervals, and can share a client", async (t) => {
  const url = writeStore(tempDir(t), TENANTS); // no head: only the bundle's own age counts
  const shared = new FlagClient({ baseUrl: url, environment: ENV, refreshIntervalMs: 20, logger: recorder() });
  t.after(() => shared.close());
  await shared.flags("acme");
  await shared.close(); // no more refreshes: the data ages
  await new Promise((r) => setTimeout(r, 60));
  await OpenFeature.setProviderAndWait("flagops-stale", new FlagopsProvider(shared));
  const details = await OpenFeature.getClient("flagops-stale").getBooleanDetails("dark_mode", false, { targetingKey: "acme" });
  assert.deepEqual([details.value, details.reason, details.variant], [true, "STALE", "on"]);
});

test("the NestJS example answers differently for two tenants", async (t) => {
  const store = tempDir(t);
  const url = writeStore(store, TENANTS, { head: { sequence: 1 } });
  const example = fileURLToPath(new URL("../build/examples/nestjs.js", import.meta.url));
  const child = spawn(process.execPath, [example], {
    env: { ...process.env, FLAGOPS_BASE_URL: url, FLAGOPS_ENVIRONMENT: ENV, FLAGOPS_CACHE_DIR: join(store, "cache"), PORT: "0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.after(() => child.kill());
  let out = "";
  child.stdout.setEncoding("utf8");
  const address = await new Promise((resolve, reject) => {
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1].replace("[::1]", "127.0.0.1"));
    });
    child.on("exit", (code) => reject(new Error(`the example exited with ${code}: ${out}`)));
  });
  const mail = async (tenant) => (await fetch(`${address}/mail`, { headers: tenant ? { "x-tenant": tenant } : {} })).json();
  assert.deepEqual(await mail("acme"), { backend: "jmap", reason: "STATIC" });
  assert.deepEqual(await mail("globex"), { backend: "imap", reason: "STATIC" });
  assert.deepEqual(await mail(null), { backend: "imap", reason: "ERROR" });
  child.kill();
  await once(child, "exit");
});
