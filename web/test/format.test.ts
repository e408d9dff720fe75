// What a score is on, said beside it, and why a key sees no jobs.

import assert from "node:assert/strict";
import { test } from "node:test";

import { scoreBasis, usd } from "../src/format";
import { type Part, whoseJobs, whyNoJobs } from "../src/tenancy";

test("a score names its split and how many examples it is on", () => {
  assert.equal(scoreBasis({ split: "dev", subset: null, n: 1200 }), "full dev · n=1,200");
  assert.equal(scoreBasis({ split: "dev", subset: "20", n: 20 }), "dev sample · n=20");
  assert.equal(scoreBasis({ split: "dev", subset: "20:raced@8", n: 8 }), "dev sample, cut short · n=8 of 20");
  assert.equal(scoreBasis({ split: "dev", subset: "all:raced@30", n: 30 }), "dev, cut short · n=30");
  assert.equal(scoreBasis(null), "");
});

test("spend is shown in dollars to a hundredth of a cent, and a dash when not counted", () => {
  assert.equal(usd(0.012345), "$0.0123");
  assert.equal(usd(12), "$12.0000");
  assert.equal(usd(undefined), "—");
});

const text = (paragraphs: Part[][]): string =>
  paragraphs.map((p) => p.map((part) => (typeof part === "string" ? part : part.code)).join("")).join("\n");

test("a tenant key with no jobs is told which jobs it sees and how to see the CLI's", () => {
  const why = text(whyNoJobs({ name: "alice", admin: false }));
  assert.match(why, /No jobs owned by "alice"/);
  assert.match(why, /EVO_OWNER/);
  assert.match(why, /evo keys create "\$USER"/);
  assert.match(why, /EVO_OWNER=alice/);
  assert.match(why, /admin key .* sees every job/);
  assert.match(whoseJobs({ name: "alice", admin: false }), /owned by "alice"/);
});

test("an admin key with no jobs is told the store is empty, not that it lacks rights", () => {
  const why = text(whyNoJobs({ name: "ops", admin: true }));
  assert.match(why, /sees every owner's jobs/);
  assert.doesNotMatch(why, /keys create/);
  assert.match(why, /EVO_DATABASE_URL/);
  assert.match(whoseJobs({ name: "ops", admin: true }), /admin/);
  assert.equal(whoseJobs(null), "");
});
