// `npm test`: bundle each test/*.test.ts with esbuild and run them with Node's own test runner.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "node_modules", ".cache", "evo-tests");
await rm(out, { recursive: true, force: true });
const tests = (await readdir(here)).filter((n) => n.endsWith(".test.ts"));
await build({
  entryPoints: tests.map((n) => join(here, n)),
  bundle: true,
  platform: "node",
  format: "esm",
  outdir: out,
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
});
const run = spawnSync(process.execPath, ["--test", ...tests.map((n) => join(out, n.replace(/\.ts$/, ".mjs")))],
  { stdio: "inherit" });
process.exit(run.status ?? 1);
