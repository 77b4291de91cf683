/**
 * The README stays true: its library examples are the programs in test/readme/ (which the type
 * check compiles) and prints what the README says; its tutorial code is the code of the
 * tutorial programs; every program, bin and script it names exists.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { getBrokerUrl } from "./helpers/broker.js";
import { ROOT } from "./tutorial/programs.js";
import { said, shown } from "./helpers/readme-text.js";

const readme = readFileSync(join(ROOT, "README.md"), "utf8");

/** The fenced code blocks of `text` in the given language, in order. */
function blocks(text: string, lang: string): string[] {
  const found: string[] = [];
  const fence = new RegExp("^```" + lang + "\\n([\\s\\S]*?)^```$", "gm");
  for (const match of text.matchAll(fence)) found.push(match[1] ?? "");
  return found;
}

/** The README between the heading `start` and the next heading of the same level. */
function section(start: string): string {
  const from = readme.indexOf(`\n${start}\n`);
  expect(from, `README section ${start}`).toBeGreaterThanOrEqual(0);
  const level = /^#+/.exec(start)?.[0] ?? "##";
  const next = readme.indexOf(`\n${level} `, from + start.length + 1);
  return readme.slice(from, next === -1 ? undefined : next);
}

/** The README's library examples: each is a program in test/readme/, shown whole. */
const EXAMPLES = readdirSync(join(ROOT, "test/readme")).filter((f) => f.endsWith(".ts"));

describe("README", () => {
  test("its library examples are the programs in test/readme/, importing from the package", () => {
    const shownBlocks = blocks(readme, "ts");
    expect(EXAMPLES).toEqual(expect.arrayContaining(["quick-start.ts", "consumers.ts", "publishers.ts"]));
    for (const file of EXAMPLES) {
      expect(shownBlocks, file).toContain(shown(file));
    }
    expect(blocks(section("## Using the library"), "ts")[0]).toBe(shown("quick-start.ts"));
  });

  test.each(EXAMPLES)("%s runs against the broker and prints what the README says", async (file) => {
    const path = join(ROOT, "test/readme", file);
    const expected = said(shown(file));
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", path], {
      cwd: ROOT,
      env: { ...process.env, AMQP_URL: await getBrokerUrl() },
      timeout: 20_000,
    });
    expect(stdout).toBe(expected);
  });

  test("the tutorial 3 walk-through shows the programs' own code", () => {
    const sources = readdirSync(join(ROOT, "src/tutorial"))
      .filter((f) => f.endsWith(".ts"))
      .map((f) => readFileSync(join(ROOT, "src/tutorial", f), "utf8"));
    const snippets = blocks(section("## Tutorial 3, Publish/Subscribe, with warren"), "ts");
    expect(snippets.length).toBeGreaterThanOrEqual(7);
    for (const snippet of snippets) {
      expect(
        sources.some((source) => source.includes(snippet.trimEnd())),
        snippet,
      ).toBe(true);
    }
    // The two whole programs, as they end.
    const emitLog = readFileSync(join(ROOT, "src/tutorial/emit_log.ts"), "utf8");
    const receiveLogs = readFileSync(join(ROOT, "src/tutorial/receive_logs.ts"), "utf8");
    expect(snippets.some((s) => emitLog.endsWith(s))).toBe(true);
    expect(snippets.some((s) => receiveLogs.endsWith(s))).toBe(true);
  });

  test("every program, bin and script the README names exists", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      bin: Record<string, string>;
      scripts: Record<string, string>;
    };
    const programs = [...readme.matchAll(/src\/tutorial\/(\w+)\.ts/g)].map((m) => m[1] ?? "");
    expect(new Set(programs).size).toBeGreaterThanOrEqual(13);
    for (const program of programs) expect(existsSync(join(ROOT, "src/tutorial", `${program}.ts`)), program).toBe(true);

    const bins = [...readme.matchAll(/`(?:npx )?(warren-[\w-]+)/g)].map((m) => m[1] ?? "");
    expect(new Set(bins)).toEqual(new Set(Object.keys(pkg.bin)));

    for (const script of readme.matchAll(/npm run (\w+)/g)) expect(pkg.scripts).toHaveProperty(script[1] ?? "");
    for (const file of ["scripts/demo", "scripts/ensure-broker.sh", ".ci/run"]) {
      expect(readme).toContain(file);
      expect(existsSync(join(ROOT, file)), file).toBe(true);
    }
  });

  test("CONTRIBUTING.md, which the README points to, names files that exist", () => {
    expect(readme).toContain("(CONTRIBUTING.md)");
    const contributing = readFileSync(join(ROOT, "CONTRIBUTING.md"), "utf8");
    for (const file of [
      "test/helpers/global-setup.ts",
      "src/tutorial/find-broker.ts",
      "scripts/build-dist.mjs",
      "spec/CONFORMANCE.md",
      "bench/README.md",
    ]) {
      expect(contributing).toContain(file.split("/").at(-1));
      expect(existsSync(join(ROOT, file)), file).toBe(true);
    }
  });
});
