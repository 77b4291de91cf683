/**
 * warren as users get it: the built package (dist/, from `npm run build`, which `npm run bench`
 * runs first), not the TypeScript source through tsx's loader -- so warren runs the same kind of
 * plain JavaScript as the peers. Types come from the source; the path is computed so that a
 * checkout without dist/ still type-checks.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

type Warren = typeof import("../src/index.js");

const DIST = join(dirname(fileURLToPath(import.meta.url)), "../dist/index.js");

export async function loadWarren(): Promise<Warren> {
  if (!existsSync(DIST)) throw new Error("dist/ is missing: run `npm run build` first (npm run bench does)");
  return (await import(pathToFileURL(DIST).href)) as Warren;
}
