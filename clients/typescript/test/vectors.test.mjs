// The semantics against the shared test vectors: the Python and TypeScript clients agree on each.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { bucket, evaluate } from "../dist/index.js";
import { ROOT } from "./helpers.mjs";

test("bucket() matches every row of tests/vectors/buckets.csv", () => {
  const [header, ...rows] = parseCsv(readFileSync(join(ROOT, "tests/vectors/buckets.csv"), "utf8"));
  assert.deepEqual(header, ["tenantId", "key", "bucket"]);
  assert.ok(rows.length > 1000);
  const wrong = [];
  for (const [tenantId, key, expected] of rows) {
    if (bucket(tenantId, key) !== Number(expected)) wrong.push([tenantId, key, expected]);
  }
  assert.deepEqual(wrong, []);
});

test("bucket() hashes UTF-8 and reads the whole digest (BigInt)", () => {
  // sha256("é:k") differs for NFC and NFD: ids are hashed as the bytes given.
  assert.notEqual(bucket("\u00e9", "some_flag"), bucket("e\u0301", "some_flag"));
  for (const id of ["ten-001", "\u00e9", "\u{1F600}", ""]) assert.ok(bucket(id, "k_k") >= 0 && bucket(id, "k_k") < 100);
});

test("evaluate() matches every case of tests/vectors/evaluate.json", () => {
  const { cases } = JSON.parse(readFileSync(join(ROOT, "tests/vectors/evaluate.json"), "utf8"));
  assert.ok(cases.length > 100);
  const wrong = cases.filter((c) => evaluate(c.flag, c.tenant, c.environment) !== c.expected).map((c) => c.name);
  assert.deepEqual(wrong, []);
});

/** RFC 4180: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(field); field = ""; }
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += ch;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows;
}
