/** The version is package.json's: src/version.ts says the same, and CHANGELOG.md has its section. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { VERSION } from "../../src/version.js";

const ROOT = join(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };

test("src/version.ts is package.json's version", () => {
  expect(VERSION).toBe(pkg.version);
});

test("CHANGELOG.md has a section for that version, and one for what is not released yet", () => {
  const changelog = readFileSync(join(ROOT, "CHANGELOG.md"), "utf8");
  expect(changelog).toMatch(new RegExp(`^## ${pkg.version.replaceAll(".", "\\.")}\\b`, "m"));
  expect(changelog).toMatch(/^## Unreleased$/m);
});
