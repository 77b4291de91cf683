/**
 * What `engines` says is what is tested: package.json names the Node.js lines CI runs
 * (scripts/node.sh and the machine's), and every package the lock file installs accepts the
 * line this suite runs on, so `npm ci` gives no EBADENGINE warning there.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { ROOT } from "../tutorial/programs.js";

type Version = [number, number, number];

function parse(v: string): Version {
  const [a = 0, b = 0, c = 0] = v
    .replace(/^v/, "")
    .split(".")
    .map((p) => (p === "*" || p === "x" ? 0 : Number(p)));
  return [a, b, c];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Whether `v` satisfies an npm range of the forms the lock file holds (>=, >, <, <=, ^, ~, x.*, a partial version). */
function satisfies(v: string, range: string): boolean {
  const version = parse(v);
  return range.split("||").some((alternative) => {
    const comparators = alternative
      .trim()
      .replace(/([<>=^~]+)\s+/g, "$1")
      .split(/\s+/)
      .filter(Boolean);
    return comparators.every((c) => {
      const m = /^([<>=^~]*)(.*)$/.exec(c)!;
      const op = m[1]!;
      const given = m[2]!;
      const bound = parse(given);
      const parts = given.split(".").filter((p) => p !== "*" && p !== "x").length;
      const cmp = compare(version, bound);
      switch (op) {
        case ">=":
          return cmp >= 0;
        case ">":
          return cmp > 0;
        case "<":
          return cmp < 0;
        case "<=":
          return cmp <= 0;
        case "^":
          return cmp >= 0 && version[0] === bound[0];
        case "~":
          return cmp >= 0 && version[0] === bound[0] && version[1] === bound[1];
        default:
          // "14", "6.*", "1.2.3": the parts given must match.
          return version.slice(0, parts).every((n, i) => n === bound[i]);
      }
    });
  });
}

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
  packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }>;
};

test("the range checker reads the forms it meets", () => {
  expect(satisfies("20.20.2", "^20.19.0 || >=22.12.0")).toBe(true);
  expect(satisfies("20.18.0", "^20.19.0 || >=22.12.0")).toBe(false);
  expect(satisfies("22.12.0", "^20.19.0 || >=22.12.0")).toBe(true);
  expect(satisfies("20.20.2", ">= 22.22")).toBe(false);
  expect(satisfies("24.1.0", "6.* || 8.* || >= 10.*")).toBe(true);
  expect(satisfies("14.17.1", ">=16 || 14 >=14.17")).toBe(true);
  expect(satisfies("14.16.0", ">=16 || 14 >=14.17")).toBe(false);
  expect(satisfies("25.0.0", "^20.19.0 || ^22.12.0 || ^24.0.0 || ^26.0.0")).toBe(false);
});

test("engines names the lines CI tests, and the line running this suite is one of them", () => {
  const lines = execFileSync("bash", [join(ROOT, "scripts/node.sh"), "lines"], { encoding: "utf8" })
    .trim()
    .split(/\s+/);
  for (const line of ["20", ...lines]) expect(pkg.engines.node).toContain(`^${line}.`);
  expect(satisfies(process.version, pkg.engines.node), `${process.version} against ${pkg.engines.node}`).toBe(true);
});

test(`every installed package accepts Node.js ${process.version}`, () => {
  const refused = Object.entries(lock.packages)
    .filter(([, p]) => typeof p.engines === "object" && !Array.isArray(p.engines) && typeof p.engines.node === "string")
    .filter(([, p]) => !satisfies(process.version, (p.engines as { node: string }).node))
    .map(([name, p]) => `${name}: ${(p.engines as { node: string }).node}`);
  expect(refused).toEqual([]);
});
