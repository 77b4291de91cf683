// Second half of `npm run build` (`node scripts/minify-dist.mjs [dir]`, dir defaulting to dist): shrink what the package ships. tsc has written dist/ (JS and
// declarations, comments kept in the declarations for editors); here every JS file is minified
// in place, one file per module as before, names kept (stack traces and error names stay
// readable), and the tutorial programs' declarations go: they are bins, not API.
// esbuild is a dev dependency only; nothing of it ends up in the package.
import { transformSync } from "esbuild";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const walk = (dir) => readdirSync(dir).flatMap((name) => {
  const p = join(dir, name);
  return statSync(p).isDirectory() ? walk(p) : [p];
});

const dist = process.argv[2] ?? "dist";
for (const file of walk(dist)) {
  if (file.endsWith(".js")) {
    const { code } = transformSync(readFileSync(file, "utf8"), { minify: true, keepNames: true, format: "esm", target: "node20", legalComments: "none" });
    writeFileSync(file, code);
  } else if (file.startsWith(join(dist, "tutorial")) && file.endsWith(".d.ts")) {
    rmSync(file);
  }
}
