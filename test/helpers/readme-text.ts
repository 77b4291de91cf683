/** What the README says its library examples (test/readme/*.ts) print. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { ROOT } from "../tutorial/programs.js";

export const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The README's library examples: each is a program in test/readme/, shown whole. */
export const EXAMPLES_DIR = join(ROOT, "test/readme");

/** The example program as the README shows it (importing from "warren" and "warren/otel"). */
export function shown(file: string): string {
  return readFileSync(join(EXAMPLES_DIR, file), "utf8")
    .replace('from "../../src/index.js"', 'from "warren"')
    .replace('from "../../src/otel/index.js"', 'from "warren/otel"');
}

/** What the README says `example` prints: "It prints `line`", or an "It prints:" text block, right after the code. */
export function said(example: string): string {
  const at = README.indexOf(example);
  const after = README.slice(at + example.length + "```\n".length);
  const inline = /^\s*It prints `([^`]+)`/.exec(after);
  if (inline) return `${inline[1]}\n`;
  const block = /^\s*It prints:\n\n```text\n([\s\S]*?)^```$/m.exec(after);
  expect(block, "an 'It prints' after the example").not.toBeNull();
  return block![1]!;
}
