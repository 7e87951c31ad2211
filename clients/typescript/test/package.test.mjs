// The package's contract: ESM with types, Node 20+, no runtime dependency, the SDK a peer only.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const dist = new URL("../dist/", import.meta.url);

test("package.json: the name, ESM, Node 20, two entry points, no runtime dependency", () => {
  assert.equal(pkg.name, "@dezky/flagops-client");
  assert.equal(pkg.type, "module");
  assert.equal(pkg.engines.node, ">=20");
  assert.deepEqual(Object.keys(pkg.exports), [".", "./openfeature"]);
  assert.equal(pkg.dependencies, undefined);
  assert.deepEqual(Object.keys(pkg.peerDependencies), ["@openfeature/server-sdk"]);
  assert.equal(pkg.peerDependenciesMeta["@openfeature/server-sdk"].optional, true);
});

test("dist/ imports only Node's built-ins and its own files, and ships .d.ts for each module", async () => {
  const files = readdirSync(dist);
  for (const name of files.filter((n) => n.endsWith(".js"))) {
    const source = readFileSync(new URL(name, dist), "utf8");
    const specifiers = [...source.matchAll(/^(?:import|export)[^'"]*?from\s+["']([^"']+)["']/gm), ...source.matchAll(/^import\s+["']([^"']+)["']/gm)]
      .map((m) => m[1]);
    for (const spec of specifiers) assert.ok(spec.startsWith("node:") || spec.startsWith("./"), `${name} imports ${spec}`);
    assert.ok(files.includes(name.replace(/\.js$/, ".d.ts")), `${name} has no .d.ts`);
  }
  const index = await import(new URL("index.js", dist));
  for (const name of ["FlagClient", "evaluate", "bucket"]) assert.equal(typeof index[name], "function", name);
  const of = await import(new URL("openfeature.js", dist));
  assert.equal(typeof of.FlagopsProvider, "function");
});
