/**
 * The shape of src/ (CONTRIBUTING.md, "Layout"): imports go one way, type imports included, so
 * that each file can be read knowing only what it imports; objects are composed, not inherited.
 * Two type imports close a cycle, on purpose: a channel's public `connection` property is typed
 * as the Connection that made it (channel.ts -> connection.ts), and a consumer's `channel` as the
 * Channel it consumes on (consumer.ts -> channel.ts); both are erased from the build.
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { expect, test } from "vitest";

const SRC = resolve(import.meta.dirname, "../../src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Every relative module a file imports or re-exports, `import type` and `export type` included (or only those). */
function importsOf(file: string, only?: "types"): string[] {
  const text = readFileSync(file, "utf8");
  const found = [...text.matchAll(/^\s*(?:import|export)\b(\s+type\b)?[^;]*?\bfrom\s+"(\.[^"]+)"/gms)];
  const specs = found.filter((m) => only === undefined || m[1] !== undefined).map((m) => m[2]!);
  return specs.map((s) => resolve(dirname(file), s.replace(/\.js$/, ".ts")));
}

/** The type imports allowed to close a cycle (see the top of this file). */
const BACK_REFERENCES = [
  [join(SRC, "client/channel.ts"), join(SRC, "client/connection.ts")],
  [join(SRC, "client/consumer.ts"), join(SRC, "client/channel.ts")],
] as const;

/** The import graph, less the allowed edges. */
function graphOf(): Map<string, string[]> {
  const allowed = (f: string, d: string) => BACK_REFERENCES.some(([from, to]) => f === from && d === to);
  return new Map(files.map((f) => [f, importsOf(f).filter((d) => !allowed(f, d))]));
}

function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    path.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node);
  return found;
}

const files = sources(SRC);
const name = (f: string) => relative(SRC, f);

test("the import scan sees the files and their imports (so the checks below can fail)", () => {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  expect(files.length).toBeGreaterThan(30);
  expect(graph.get(join(SRC, "client/connect.ts"))).toEqual(
    expect.arrayContaining([join(SRC, "client/connection.ts"), join(SRC, "client/recovery.ts")]),
  );
  // A type-only import counts: recovery.ts reaches connection.ts only through `import type`.
  expect(graph.get(join(SRC, "client/recovery.ts"))).toContain(join(SRC, "client/connection.ts"));
  expect(
    cycles(
      new Map([
        ["a", ["b"]],
        ["b", ["c"]],
        ["c", ["a"]],
      ]),
    ),
  ).toEqual([["a", "b", "c", "a"]]);
});

test("no import cycle in src/, type imports included, but for the two back-references' types", () => {
  for (const [from, to] of BACK_REFERENCES) {
    expect(importsOf(from, "types")).toContain(to);
    expect(
      importsOf(from).filter((d) => d === to),
      `${name(from)} imports ${name(to)} for a type only`,
    ).toHaveLength(1);
  }
  const graph = graphOf();
  for (const [file, deps] of graph)
    for (const d of deps) expect(files, `${name(file)} imports ${name(d)}, which does not exist`).toContain(d);
  expect(cycles(graph).map((c) => c.map(name).join(" -> "))).toEqual([]);
});

test("only connect.ts imports both the connection and recovery", () => {
  const both = files.filter((f) => {
    const deps = importsOf(f).map(name);
    return deps.includes("client/connection.ts") && deps.includes("client/recovery.ts");
  });
  expect(both.map(name)).toEqual(["client/connect.ts"]);
});

test("no file augments another of ours (`declare module`)", () => {
  const augmenting = files.filter((f) => /^\s*declare\s+module\s+["']\./m.test(readFileSync(f, "utf8")));
  expect(augmenting.map(name)).toEqual([]);
});

test("src/client composes: no class extends another but errors, warnings and EventEmitter", () => {
  const extending = files
    .filter((f) => name(f).startsWith("client/"))
    .flatMap((f) =>
      [...readFileSync(f, "utf8").matchAll(/\bclass\s+(\w+)(?:<[^>]*>)?\s+extends\s+([\w.]+)/g)].map((m) => ({
        file: name(f),
        cls: m[1]!,
        base: m[2]!,
      })),
    );
  expect(extending.length).toBeGreaterThan(10); // the scan sees the error classes
  const allowed = (base: string) => base === "EventEmitter" || base === "Error" || /(Error|Warning)$/.test(base);
  expect(extending.filter((e) => !allowed(e.base))).toEqual([]);
  expect(allowed("ChannelCore")).toBe(false);
});
