/**
 * The tutorial programs as bins of the built package: each bin names a program that
 * exists in src/tutorial, and each program is a node script (shebang) calling main().
 * No broker needed.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ROOT } from "./programs.js";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
};

const PROGRAMS = [
  "send",
  "receive",
  "new_task",
  "worker",
  "emit_log",
  "receive_logs",
  "emit_log_direct",
  "receive_logs_direct",
  "emit_log_topic",
  "receive_logs_topic",
  "rpc_server",
  "rpc_client",
  "publisher_confirms",
];

describe("tutorial bins", () => {
  test("every tutorial program is a bin warren-<name>: bin/warren-<name>.js, which runs the program built to dist/tutorial/<name>.js", () => {
    const bin = (p: string) => `warren-${p.replaceAll("_", "-")}`;
    expect(pkg.bin).toEqual(Object.fromEntries(PROGRAMS.map((p) => [bin(p), `bin/${bin(p)}.js`])));
    for (const p of PROGRAMS) {
      const stub = readFileSync(join(ROOT, "bin", `${bin(p)}.js`), "utf8");
      expect(stub.startsWith("#!/usr/bin/env node\n")).toBe(true);
      expect(stub).toContain(`import "../dist/tutorial/${p}.js";`);
    }
    // The package ships both, or the bins would point at nothing.
    expect(pkg.files).toEqual(expect.arrayContaining(["dist", "bin"]));
    expect(pkg.files).not.toContain("!dist/tutorial");
  });

  test("each program starts with a node shebang and runs through main()", () => {
    const sources = readdirSync(join(ROOT, "src/tutorial")).filter((f) => f.endsWith(".ts"));
    for (const program of PROGRAMS) {
      expect(sources).toContain(`${program}.ts`);
      const text = readFileSync(join(ROOT, "src/tutorial", `${program}.ts`), "utf8");
      expect(text.startsWith("#!/usr/bin/env node\n")).toBe(true);
      expect(text).toMatch(/^main\(/m);
    }
  });

  test("npm run demo runs the demo from source", () => {
    expect(pkg.scripts["demo"]).toBe("tsx src/tutorial/demo.ts");
  });
});
