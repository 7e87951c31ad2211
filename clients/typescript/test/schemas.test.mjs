// Every schema in schema/ compiles in ajv's strict mode: alone when it is self-contained (the
// output schemas), and after addSchema of the directory for the input schemas that share
// flag.schema.json's vocabulary. Real documents, written by flagops, validate.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

import { ENV, ROOT, compileRepo, flagops, tempDir } from "./helpers.mjs";

const DIR = join(ROOT, "schema");
const NAMES = readdirSync(DIR).filter((n) => n.endsWith(".schema.json")).sort();
const load = (name) => JSON.parse(readFileSync(join(DIR, name), "utf8"));
const INPUTS = new Set(["flag.schema.json", "tenants.schema.json"]);

function strictAjv() {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  return ajv;
}

const refsOf = (node) => (Array.isArray(node) ? node.flatMap(refsOf) : node && typeof node === "object"
  ? Object.entries(node).flatMap(([k, v]) => (k === "$ref" ? [v] : refsOf(v))) : []);

test("the schema directory holds the input, output, head and snapshot schemas", () => {
  for (const name of ["flag", "tenants", "bundle", "manifest", "rules", "head", "snapshot"]) {
    assert.ok(NAMES.includes(`${name}.schema.json`), name);
  }
});

for (const name of NAMES) {
  test(`${name} compiles in strict mode after addSchema of the directory`, () => {
    const ajv = strictAjv();
    for (const other of NAMES) ajv.addSchema(load(other));
    assert.equal(typeof ajv.getSchema(load(name).$id), "function");
  });
  if (!INPUTS.has(name) || refsOf(load(name)).every((r) => r.startsWith("#"))) {
    test(`${name} compiles in strict mode alone`, () => {
      assert.deepEqual(refsOf(load(name)).filter((r) => !r.startsWith("#")), []);
      assert.equal(typeof strictAjv().compile(load(name)), "function");
    });
  }
}

test("documents written by flagops compile and publish validate; broken ones do not", (t) => {
  const dir = tempDir(t);
  const { repo, dist } = compileRepo(dir);
  const store = join(dir, "store");
  flagops(["publish", "--env", ENV, "--target", `file://${store}`, "--from", dist], { cwd: repo });
  const ajv = strictAjv();
  for (const name of NAMES) ajv.addSchema(load(name));
  const validate = (schema, doc) => {
    const v = ajv.getSchema(`https://flagops.dezky.eu/schema/${schema}.schema.json`);
    return v(doc) ? [] : v.errors;
  };
  const read = (name) => JSON.parse(readFileSync(join(store, ENV, name), "utf8"));
  for (const slug of ["acme", "globex"]) assert.deepEqual(validate("bundle", read(`tenants/${slug}.json`)), []);
  for (const name of ["manifest", "rules", "snapshot", "head"]) assert.deepEqual(validate(name, read(`${name}.json`)), [], name);
  assert.deepEqual(validate("tenants", [{ id: "t1", slug: "acme", plan: "free" }]), []);
  assert.deepEqual(validate("flag", { key: "dark_mode", description: "d", state: "rollout", pct: 5 }), []);

  assert.notDeepEqual(validate("flag", { key: "dark_mode", description: "d", state: "rollout" }), []);
  assert.notDeepEqual(validate("tenants", [{ id: "t1", slug: "acme", plan: "platinum" }]), []);
  assert.notDeepEqual(validate("bundle", { ...read("tenants/acme.json"), flags: { dark_mode: 1 } }), []);
  assert.notDeepEqual(validate("head", { ...read("head.json"), sequence: "7" }), []);
  assert.notDeepEqual(validate("snapshot", { ...read("snapshot.json"), tenants: { acme: "***" } }), []);
});
