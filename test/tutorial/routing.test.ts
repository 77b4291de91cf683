/**
 * Tutorial 4, Routing: emit_log_direct and receive_logs_direct over the direct exchange
 * `direct_logs`, with the tutorial's setup: one receiver saving only warnings and errors,
 * one printing everything.
 */
import { describe, expect, test } from "vitest";
import { cleanUpPrograms, ok, publishFromAmqplib, receiveInAmqplib, run, start, useOwnVhost } from "./programs.js";

const WAITING = " [*] Waiting for logs. To exit press CTRL+C";
/** Every receiver also binds this severity, so one last log tells them all the test is over. */
const END = "end-of-test";

cleanUpPrograms();
useOwnVhost("routing");

describe.sequential("tutorial 4: routing", () => {
  test("each receiver gets exactly the severities it bound", async () => {
    const toDisk = await start("receive_logs_direct", ["warning", "error", END]);
    const toScreen = await start("receive_logs_direct", ["info", "warning", "error", END]);
    const errorsOnly = await start("receive_logs_direct", ["error", END]);
    const receivers = [toDisk, toScreen, errorsOnly];
    for (const r of receivers) await r.ready();

    expect(await ok("emit_log_direct", ["error", "Run.", "Run.", "Or", "it", "will", "explode."])).toEqual([
      " [x] Sent error:Run. Run. Or it will explode.",
    ]);
    expect(await ok("emit_log_direct")).toEqual([" [x] Sent info:Hello World!"]);
    expect(await ok("emit_log_direct", ["warning", "disk almost full"])).toEqual([
      " [x] Sent warning:disk almost full",
    ]);
    expect(await ok("emit_log_direct", ["debug", "nobody listens"])).toEqual([" [x] Sent debug:nobody listens"]);
    await ok("emit_log_direct", [END, "bye"]);

    for (const r of receivers) await r.line(` [x] ${END}:bye`);
    expect(toDisk.lines).toEqual([
      WAITING,
      " [x] error:Run. Run. Or it will explode.",
      " [x] warning:disk almost full",
      ` [x] ${END}:bye`,
    ]);
    expect(toScreen.lines).toEqual([
      WAITING,
      " [x] error:Run. Run. Or it will explode.",
      " [x] info:Hello World!",
      " [x] warning:disk almost full",
      ` [x] ${END}:bye`,
    ]);
    expect(errorsOnly.lines).toEqual([WAITING, " [x] error:Run. Run. Or it will explode.", ` [x] ${END}:bye`]);
  });

  test("receive_logs_direct without severities prints its usage and exits 1", async () => {
    const exit = await run("receive_logs_direct");
    expect(exit.code).toBe(1);
    expect(exit.stdout).toEqual([]);
    expect(exit.stderr).toBe("Usage: receive_logs_direct [info] [warning] [error]\n");
  });

  test("interop: amqplib's logs reach warren's receive_logs_direct by severity, text unchanged", async () => {
    const receiver = await start("receive_logs_direct", ["warning", "error"]);
    await receiver.ready();

    await publishFromAmqplib("direct_logs", "direct", [
      ["info", "not for this receiver"],
      ["error", "from amqplib: ünïcödé ✓"],
      ["warning", "from amqplib: disk almost full"],
    ]);
    await receiver.line(" [x] warning:from amqplib: disk almost full");
    expect(receiver.lines).toEqual([
      WAITING,
      " [x] error:from amqplib: ünïcödé ✓",
      " [x] warning:from amqplib: disk almost full",
    ]);
  });

  test("interop: warren's emit_log_direct reaches an amqplib consumer bound to that severity", async () => {
    const received = await receiveInAmqplib("direct_logs", "direct", "error", 2, async () => {
      await ok("emit_log_direct", ["info", "not for amqplib"]);
      expect(await ok("emit_log_direct", ["error", "from warren: ünïcödé ✓"])).toEqual([
        " [x] Sent error:from warren: ünïcödé ✓",
      ]);
      await ok("emit_log_direct", ["error", "second"]);
    });
    expect(received).toEqual([
      ["direct_logs", "error", "from warren: ünïcödé ✓"],
      ["direct_logs", "error", "second"],
    ]);
  });
});
