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
type WarrenAmqplib = typeof import("../src/amqplib/index.js");

const DIST = join(dirname(fileURLToPath(import.meta.url)), "../dist");

async function load<T>(file: string): Promise<T> {
  const path = join(DIST, file);
  if (!existsSync(path)) throw new Error("dist/ is missing: run `npm run build` first (npm run bench does)");
  return (await import(pathToFileURL(path).href)) as T;
}

export function loadWarren(): Promise<Warren> {
  return load<Warren>("index.js");
}

/** warren/amqplib, built: dist/amqplib.js over dist/index.js. */
export function loadWarrenAmqplib(): Promise<WarrenAmqplib> {
  return load<WarrenAmqplib>("amqplib.js");
}
