/**
 * spec/CONFORMANCE.md stays true: every method of spec/amqp-0-9-1.json has a row, and every
 * test it cites (`file` › "name") exists under that name. No broker needed.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const doc = readFileSync(`${root}spec/CONFORMANCE.md`, "utf8");
const spec = JSON.parse(readFileSync(`${root}spec/amqp-0-9-1.json`, "utf8")) as {
  classes: { name: string; methods: { name: string }[] }[];
};

/** The rows of the method tables: first cell -> the rest of the row. */
function methodRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of doc.split("\n")) {
    const m = /^\| ([a-z]+\.[a-z-]+) \|(.*)$/.exec(line);
    if (m) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

test("every method of the spec has a row, and every row but the deprecated recover-async cites a test", () => {
  const rows = methodRows();
  const methods = spec.classes.flatMap((c) => c.methods.map((m) => m.name));
  expect(methods.length).toBeGreaterThan(60);
  expect(methods.filter((m) => !rows.has(m))).toEqual([]);
  const uncited = [...rows]
    .filter(([name, rest]) => name !== "basic.recover-async" && !/› "/.test(rest))
    .map(([name]) => name);
  expect(uncited).toEqual([]);
});

test("every cited test exists under that name", () => {
  const refs = [...doc.matchAll(/`(test\/[\w/.-]+\.test\.ts)` › "([^"]+)"/g)].map((m) => ({
    file: m[1]!,
    name: m[2]!,
  }));
  expect(refs.length).toBeGreaterThan(100);
  const missing = refs.filter(
    ({ file, name }) => !existsSync(`${root}${file}`) || !readFileSync(`${root}${file}`, "utf8").includes(name),
  );
  expect(missing).toEqual([]);
});
