// Bundles src/ into ../api/static (served by `evo serve` at /): one script and one stylesheet,
// named by content hash so the server can let browsers cache them forever.
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "api", "static");
const assets = join(out, "assets");

await rm(out, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await build({
  entryPoints: { app: join(here, "src", "main.ts") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022"],
  outdir: assets,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const pick = (ext) => {
  const found = outputs.filter((n) => n.startsWith("app-") && n.endsWith(ext));
  if (found.length !== 1) throw new Error(`expected one app-*${ext}, got ${found.join(", ")}`);
  return found[0];
};
const page = (await readFile(join(here, "src", "index.html"), "utf8"))
  .replace("%APP_JS%", `assets/${pick(".js")}`)
  .replace("%APP_CSS%", `assets/${pick(".css")}`);
await writeFile(join(out, "index.html"), page);
// compressed once here rather than on every request: a third of the bytes over the wire
for (const name of outputs.filter((n) => n.endsWith(".js") || n.endsWith(".css"))) {
  const file = join(assets, name);
  await writeFile(`${file}.gz`, gzipSync(await readFile(file), { level: 9 }));
}
console.log(`dashboard built into ${out}: ${outputs.join(", ")}`);
