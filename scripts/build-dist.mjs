// Second half of `npm run build` (`node scripts/build-dist.mjs [dir]`, dir defaulting to dist):
// shape what the package ships. tsc has written the declarations (tsconfig.build.json emits
// nothing else); here
//  - the library becomes one minified ES module, dist/index.js (one file gzips smaller than
//    twenty, and the exports map lets nobody import the inner modules anyway). Names are kept:
//    stack traces still say Channel.publish; warren/otel is dist/otel.js, warren/amqplib
//    dist/amqplib.js and dist/amqplib-callback.js (over dist/index.js);
//  - each tutorial program becomes dist/tutorial/<name>.js, importing the library from
//    ../index.js, as the bins in package.json expect;
//  - the declarations keep what an editor shows a user, and lose what only we read: private
//    members and their comments, the files' opening comments on how a module works inside,
//    declaration files that index.d.ts never reaches, and the tutorials' declarations (they are
//    bins, not API).
// esbuild is a dev dependency only; nothing of it ends up in the package.
import { build } from "esbuild";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = resolve(process.argv[2] ?? "dist");
const common = {
  format: "esm",
  platform: "node",
  target: "node20",
  minify: true,
  keepNames: true,
  legalComments: "none",
  logLevel: "error",
};

await build({ ...common, entryPoints: [join(root, "src/index.ts")], bundle: true, outfile: join(dist, "index.js") });
// warren/otel: its own module; @opentelemetry/api is the user's (an optional peer dependency),
// and what it takes from the library is types only.
await build({
  ...common,
  entryPoints: [join(root, "src/otel/index.ts")],
  bundle: true,
  external: ["@opentelemetry/api"],
  outfile: join(dist, "otel.js"),
});

// warren/amqplib and warren/amqplib/callback_api: amqplib's API over the library, which they
// import from ./index.js (one copy of warren, whichever entry a program takes it through).
const library = {
  name: "the library",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/index\.js$/ }, () => ({ path: "./index.js", external: true }));
    // The callback API over the promise API's module, not a copy of it.
    b.onResolve({ filter: /^\.\/index\.js$/ }, (a) =>
      a.importer.endsWith("callback_api.ts") ? { path: "./amqplib.js", external: true } : undefined,
    );
  },
};
for (const [entry, out] of [
  ["src/amqplib/index.ts", "amqplib.js"],
  ["src/amqplib/callback_api.ts", "amqplib-callback.js"],
])
  await build({
    ...common,
    entryPoints: [join(root, entry)],
    bundle: true,
    plugins: [library],
    outfile: join(dist, out),
  });

// The programs that are bins; demo.ts and find-broker.ts run from source only (npm run demo).
const tutorialSrc = join(root, "src/tutorial");
const programs = readdirSync(tutorialSrc).filter(
  (f) => f.endsWith(".ts") && !["demo.ts", "find-broker.ts"].includes(f),
);
await build({
  ...common,
  entryPoints: programs.map((f) => join(tutorialSrc, f)),
  bundle: false,
  outdir: join(dist, "tutorial"),
});

const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });

/**
 * One declaration file as an editor's user needs it. tsc writes each member on its own line,
 * its JSDoc block just above, and a private member as a bare `private name;` line, which is
 * what lets this work line by line. Private constructors stay: they are what stops `new`.
 */
function trimDeclarations(text, isIndex) {
  const out = [];
  let comment = [];
  let open = false;
  let first = true;
  for (const line of text.split("\n")) {
    if (open || line.trimStart().startsWith("/**")) {
      comment.push(line);
      open = !line.includes("*/");
      continue;
    }
    const isPrivate = /^\s+private (?!constructor\b)/.test(line);
    // A module's opening comment (it comes before the imports) explains its inside.
    const isHeader = first && !isIndex && /^import\b/.test(line);
    if (!isPrivate && !isHeader) out.push(...comment);
    if (!isPrivate) out.push(line);
    comment = [];
    first = false;
  }
  out.push(...comment);
  return out.join("\n");
}

/** The declaration files index.d.ts reaches through its imports and re-exports, itself included. */
function reachable(entry) {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const [, spec] of readFileSync(file, "utf8").matchAll(/(?:from|import\()\s*"(\.[^"]+)\.js"/g)) {
      visit(join(dirname(file), `${spec}.d.ts`));
    }
  };
  visit(entry);
  return seen;
}

const index = join(dist, "index.d.ts");
const otel = join(dist, "otel/index.d.ts");
const entries = [index, otel, join(dist, "amqplib/index.d.ts"), join(dist, "amqplib/callback_api.d.ts")];
const keep = new Set(entries.flatMap((entry) => [...reachable(entry)]));
for (const file of walk(dist)) {
  if (!file.endsWith(".d.ts")) continue;
  if (!keep.has(file)) rmSync(file);
  else writeFileSync(file, trimDeclarations(readFileSync(file, "utf8"), entries.includes(file)));
}
// Directories the removals emptied.
for (const name of readdirSync(dist)) {
  const p = join(dist, name);
  if (statSync(p).isDirectory() && walk(p).length === 0) rmSync(p, { recursive: true });
}
