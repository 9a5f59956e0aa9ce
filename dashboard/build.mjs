// Builds the dashboard into ../src/lamina/dashboard/static/ (committed: `pip install` needs no
// Node.js): index.html plus ui/app-<hash>.js, ui/app-<hash>.css and ui/THIRD_PARTY_LICENSES.txt.
// Run through scripts/build-dashboard.sh (npm ci && npm run build).
import * as esbuild from "esbuild";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "lamina", "dashboard", "static");
const ui = join(out, "ui");

rmSync(out, { recursive: true, force: true });
mkdirSync(ui, { recursive: true });

const result = await esbuild.build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: ui,
  entryNames: "app-[hash]",
  legalComments: "none", // the licenses go to THIRD_PARTY_LICENSES.txt instead
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = outputs.find((name) => name.endsWith(".js"));
const css = outputs.find((name) => name.endsWith(".css"));
const page = readFileSync(join(here, "src", "index.html"), "utf8")
  .replace("{{js}}", `/ui/${js}`)
  .replace("{{css}}", `/ui/${css}`);
writeFileSync(join(out, "index.html"), page);

// The license of every npm package that went into the bundle.
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m) packages.add(m[1]);
}
const notices = [...packages].sort().map((name) => {
  const dir = join(here, "node_modules", name);
  const { version, license } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license"].find((f) => existsSync(join(dir, f)));
  const text = file ? readFileSync(join(dir, file), "utf8").trim() : `License: ${license}`;
  return `${name} ${version} (${license})\n\n${text}\n`;
});
writeFileSync(join(ui, "THIRD_PARTY_LICENSES.txt"), notices.join("\n" + "-".repeat(72) + "\n\n"));

for (const [path, { bytes }] of Object.entries(result.metafile.outputs)) {
  console.log(`${basename(path)}  ${(bytes / 1024).toFixed(1)} KiB`);
}
