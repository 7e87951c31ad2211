// Against the real local S3 server (SeaweedFS): `flagops publish` writes the store, the bucket
// policy of `flagops bucket-policy` makes bundles and heads public, the client reads them
// anonymously over HTTP as a service does; the private snapshot through a presigned URL.
// Without a server the test skips, and FAILS when CI is set.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { test } from "node:test";

import { FlagClient } from "../dist/index.js";
import { ENV, PYTHON, ROOT, SLUGS, compileRepo, flagops, readBundle, recorder, tempDir } from "./helpers.mjs";

const PREFIX = "flags";

/** The running server's environment (AWS_ENDPOINT_URL and keys), or the reason there is none. */
function server() {
  try {
    const out = execFileSync(PYTHON, [join(ROOT, "scripts/s3server.py"), "env"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const env = Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], m[2].replace(/^'(.*)'$/, "$1")]));
    return env.AWS_ENDPOINT_URL ? { env } : { reason: "no endpoint in `s3server.py env`" };
  } catch (err) {
    return { reason: String(err.stderr || err.message).trim().split("\n").pop() };
  }
}

// boto3 (the project's test dependency) for what flagops does not do: buckets, policies, presigning.
const S3_TOOL = `
import json, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
op, bucket = sys.argv[1], sys.argv[2]
if op == "create":
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=sys.stdin.read())
elif op == "presign":
    print(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": sys.argv[3]}, ExpiresIn=600))
elif op == "delete":
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    s3.delete_bucket(Bucket=bucket)
`;

test("the real S3 server: flagops publish, then tenant and snapshot mode read it", async (t) => {
  const found = server();
  if (!found.env) {
    if (process.env.CI) assert.fail(`the local S3 server is required in CI: ${found.reason}`);
    t.skip(`local S3 server unavailable (${found.reason}); run \`make s3-up\``);
    return;
  }
  const env = { ...process.env, ...found.env };
  delete env.AWS_PROFILE;
  delete env.AWS_SESSION_TOKEN;
  const s3 = (args, input) => execFileSync(PYTHON, ["-c", S3_TOOL, ...args], { env, input, encoding: "utf8" }).trim();
  const bucket = `ts-${randomBytes(8).toString("hex")}`;
  s3(["create", bucket], flagops(["bucket-policy", "--bucket", bucket, "--prefix", PREFIX]));
  t.after(() => s3(["delete", bucket]));

  const dir = tempDir(t);
  const { repo, dist } = compileRepo(dir);
  const publish = () => flagops(["publish", "--env", ENV, "--target", `s3://${bucket}/${PREFIX}`, "--from", dist], { cwd: repo, env });
  publish();
  const url = `${env.AWS_ENDPOINT_URL}/${bucket}/${PREFIX}`;
  const expected = Object.fromEntries(SLUGS.map((slug) => [slug, readBundle(dist, slug)]));

  const log = recorder();
  const c = new FlagClient({ baseUrl: url, environment: ENV, refreshIntervalMs: null, logger: log, revalidateRate: 500 });
  t.after(() => c.close());
  for (const slug of SLUGS) assert.deepEqual(await c.flags(slug), expected[slug], slug);
  assert.equal(await c.flags("nobody"), null);
  assert.equal(c.status().head, "present");
  await c.refresh(); // vouches once for the bundles loaded before the head was known
  const before = c.status();
  assert.equal(await c.refresh(), true);
  assert.equal(await c.refresh(), true);
  const after = c.status();
  assert.equal(after.requests - before.requests, 2, "one conditional request of the head per refresh");
  assert.equal(after.notModified - before.notModified, 2);

  // The private snapshot, read through a presigned URL; anonymous reads of it are refused.
  const presigned = s3(["presign", bucket, `${PREFIX}/${ENV}/snapshot.json`]);
  assert.equal((await fetch(`${url}/${ENV}/snapshot.json`)).status, 403);
  const all = new FlagClient({ baseUrl: url, environment: ENV, refreshIntervalMs: null, allTenants: true, snapshotUrl: presigned, logger: recorder() });
  t.after(() => all.close());
  for (const slug of SLUGS) assert.deepEqual(await all.flags(slug), expected[slug], slug);
  const snapRequests = all.status().requests;
  await all.refresh();
  assert.equal(all.status().requests - snapRequests, 1);

  // A rollout raised to 100 %, compiled and published: both modes see it on their next refresh.
  compileRepo(dir, { billingPct: 100 });
  publish();
  assert.equal(await c.refresh(), true);
  assert.equal(await all.refresh(), true);
  for (const slug of SLUGS) {
    assert.equal(c.isEnabledCached("new_billing", slug), true, slug);
    assert.equal(all.isEnabledCached("new_billing", slug), true, slug);
  }
  assert.equal(c.status().sequence, 2);

  // A kill (a flag that was on for everyone turned off): the head names it, both modes apply it.
  compileRepo(dir, { billingPct: 100, alwaysOn: "off" });
  publish();
  await c.refresh();
  await all.refresh();
  assert.ok(c.status().off.includes("always_on"), JSON.stringify(c.status().off));
  for (const slug of SLUGS) {
    assert.equal(c.isEnabledCached("always_on", slug, true), false, slug);
    assert.equal(all.isEnabledCached("always_on", slug, true), false, slug);
  }
  assert.deepEqual(log.lines.warn, []);
});
