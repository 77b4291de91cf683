/**
 * warren on Bun and Deno, each a binary from the npm registry (scripts/runtimes.sh): the README's
 * library examples print what the README says, tutorials 1 and 3 run end to end, and a handler
 * closes its own connection. The programs run on that runtime, from source; the tests run on
 * Node.js. Where a runtime is not installed the tests say so and are skipped, except in CI,
 * which installs both (.ci/run) and fails without them.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, test } from "vitest";
import { getBrokerUrl } from "../helpers/broker.js";
import { EXAMPLES_DIR, said, shown } from "../helpers/readme-text.js";
import { Program, ROOT, cleanUpPrograms, tutorialUrl, useOwnVhost } from "../tutorial/programs.js";

cleanUpPrograms();
useOwnVhost("runtimes");

const RUNTIMES = {
  bun: (file: string) => [join(ROOT, ".runtimes/bun/bun"), file],
  // Deno resolves the sources' "./x.js" imports to x.ts only with --sloppy-imports.
  deno: (file: string) => [join(ROOT, ".runtimes/deno/deno"), "run", "-A", "--sloppy-imports", file],
} as const;

const EXAMPLES = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith(".ts"));

for (const [name, command] of Object.entries(RUNTIMES)) {
  const installed = existsSync(command("")[0]!);
  if (!installed && process.env["CI"] !== undefined)
    throw new Error(`${name} is not installed: .ci/run installs it with bash scripts/runtimes.sh bin ${name}`);
  describe
    .skipIf(!installed)
    .sequential(`${name}${installed ? "" : ` (not installed: bash scripts/runtimes.sh bin ${name})`}`, () => {
      /** Runs a program on this runtime, as a tutorial program is run (programs.ts). */
      const start = async (file: string, args: string[] = [], url?: string) => {
        const [bin, ...rest] = command(file) as [string, ...string[]];
        return new Program(file, args, { ...process.env, AMQP_URL: url ?? (await tutorialUrl()) }, "pipe", [
          bin,
          ...rest,
        ]);
      };

      test.each(EXAMPLES)("%s prints what the README says", async (file) => {
        const [bin, ...args] = command(join(EXAMPLES_DIR, file)) as [string, ...string[]];
        const { stdout } = await promisify(execFile)(bin, args, {
          cwd: ROOT,
          env: { ...process.env, AMQP_URL: await getBrokerUrl() },
          timeout: 20_000,
        });
        expect(stdout).toBe(said(shown(file)));
      });

      test("tutorial 1: receive prints what send sent", async () => {
        const receiver = await start("src/tutorial/receive.ts");
        await receiver.line(" [*] Waiting for messages. To exit press CTRL+C");
        const sender = await start("src/tutorial/send.ts");
        expect((await sender.exited).stdout).toEqual([" [x] Sent 'Hello World!'"]);
        await receiver.line(" [x] Received Hello World!");
        expect((await receiver.stop()).code).toBe(0);
      });

      test("tutorial 3: two receive_logs get what emit_log sends", async () => {
        const receivers = [await start("src/tutorial/receive_logs.ts"), await start("src/tutorial/receive_logs.ts")];
        for (const r of receivers) await r.line(" [*] Waiting for logs. To exit press CTRL+C");
        const emitter = await start("src/tutorial/emit_log.ts", ["on", name]);
        expect((await emitter.exited).stdout).toEqual([` [x] Sent on ${name}`]);
        for (const r of receivers) {
          await r.line(` [x] on ${name}`);
          expect((await r.stop()).code).toBe(0);
        }
      });

      test("a handler that closes its connection after an await is not waited for by that close", async () => {
        const program = await start(join(ROOT, "test/runtimes/stop-handler.ts"), [], await getBrokerUrl());
        const exit = await program.exited;
        expect(exit.stdout).toEqual(['closed from the handler of "stop"']);
        expect(exit.code).toBe(0);
      });
    });
}
