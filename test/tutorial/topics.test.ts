/**
 * Tutorial 5, Topics: emit_log_topic and receive_logs_topic over the topic exchange
 * `topic_logs`, with the tutorial's two routing tables.
 */
import { describe, expect, test } from "vitest";
import {
  cleanUpPrograms,
  ok,
  publishFromAmqplib,
  receiveInAmqplib,
  run,
  start,
  type Program,
  useOwnVhost,
} from "./programs.js";

const WAITING = " [*] Waiting for logs. To exit press CTRL+C";
/** Bound by every receiver and matched by none of the keys under test: the last log of a test. */
const END = "end.of.test";

cleanUpPrograms();
useOwnVhost("topics");

/**
 * Starts one receiver per list of binding keys, emits one log per routing key (its body
 * is the key), and returns what each receiver got, as routing keys in arrival order.
 */
async function route(bindings: string[][], routingKeys: string[]): Promise<string[][]> {
  const receivers: Program[] = [];
  for (const keys of bindings) receivers.push(await start("receive_logs_topic", [...keys, END]));
  for (const r of receivers) await r.ready();

  for (const key of routingKeys) {
    expect(await ok("emit_log_topic", [key, `to ${key}`])).toEqual([` [x] Sent ${key}:to ${key}`]);
  }
  await ok("emit_log_topic", [END, "bye"]);

  const got: string[][] = [];
  for (const r of receivers) {
    await r.line(` [x] ${END}:bye`);
    expect(r.lines[0]).toBe(WAITING);
    const logs = r.lines.slice(1, -1);
    for (const line of logs) expect(line).toMatch(/^ \[x\] ([^:]+):to \1$/);
    got.push(logs.map((line) => line.slice(5, line.indexOf(":"))));
  }
  return got;
}

describe.sequential("tutorial 5: topics", () => {
  test("the logging example: '#', 'kern.*', '*.critical', both, and '*.info'", async () => {
    const keys = ["kern.critical", "anonymous.info", "cron.critical", "kern.info", "kern.warning.extra"];
    const [all, kern, critical, kernOrCritical, info] = await route(
      [["#"], ["kern.*"], ["*.critical"], ["kern.*", "*.critical"], ["*.info"]],
      keys,
    );
    expect(all).toEqual(keys);
    expect(kern).toEqual(["kern.critical", "kern.info"]);
    expect(critical).toEqual(["kern.critical", "cron.critical"]);
    // Matched by both of its bindings, kern.critical still arrives once.
    expect(kernOrCritical).toEqual(["kern.critical", "cron.critical", "kern.info"]);
    expect(info).toEqual(["anonymous.info", "kern.info"]);
  });

  test("the animals example: Q1 '*.orange.*', Q2 '*.*.rabbit' and 'lazy.#'", async () => {
    const [q1, q2] = await route(
      [["*.orange.*"], ["*.*.rabbit", "lazy.#"]],
      [
        "quick.orange.rabbit",
        "lazy.orange.elephant",
        "quick.orange.fox",
        "lazy.brown.fox",
        "lazy.pink.rabbit",
        "quick.brown.fox",
        "orange",
        "quick.orange.new.rabbit",
        "lazy.orange.new.rabbit",
      ],
    );
    expect(q1).toEqual(["quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"]);
    expect(q2).toEqual([
      "quick.orange.rabbit",
      "lazy.orange.elephant",
      "lazy.brown.fox",
      "lazy.pink.rabbit",
      "lazy.orange.new.rabbit",
    ]);
  });

  test("emit_log_topic defaults to anonymous.info and 'Hello World!'", async () => {
    const receiver = await start("receive_logs_topic", ["anonymous.*"]);
    await receiver.ready();
    expect(await ok("emit_log_topic")).toEqual([" [x] Sent anonymous.info:Hello World!"]);
    await receiver.line(" [x] anonymous.info:Hello World!");
  });

  test("receive_logs_topic without binding keys prints its usage and exits 1", async () => {
    const exit = await run("receive_logs_topic");
    expect(exit.code).toBe(1);
    expect(exit.stderr).toBe("Usage: receive_logs_topic [binding_key]...\n");
  });

  test("interop: amqplib's logs reach warren's receive_logs_topic by pattern, text unchanged", async () => {
    const receiver = await start("receive_logs_topic", ["*.critical", "kern.#"]);
    await receiver.ready();

    await publishFromAmqplib("topic_logs", "topic", [
      ["cron.info", "not for this receiver"],
      ["cron.critical", "from amqplib: ünïcödé ✓"],
      ["kern.disk.full", "from amqplib: disk full"],
    ]);
    await receiver.line(" [x] kern.disk.full:from amqplib: disk full");
    expect(receiver.lines).toEqual([
      WAITING,
      " [x] cron.critical:from amqplib: ünïcödé ✓",
      " [x] kern.disk.full:from amqplib: disk full",
    ]);
  });

  test("interop: warren's emit_log_topic reaches an amqplib consumer bound with a pattern", async () => {
    const received = await receiveInAmqplib("topic_logs", "topic", "*.critical", 2, async () => {
      await ok("emit_log_topic", ["kern.info", "not for amqplib"]);
      expect(await ok("emit_log_topic", ["kern.critical", "from warren: ünïcödé ✓"])).toEqual([
        " [x] Sent kern.critical:from warren: ünïcödé ✓",
      ]);
      await ok("emit_log_topic", ["cron.critical", "second"]);
    });
    expect(received).toEqual([
      ["topic_logs", "kern.critical", "from warren: ünïcödé ✓"],
      ["topic_logs", "cron.critical", "second"],
    ]);
  });
});
