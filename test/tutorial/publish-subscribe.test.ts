/**
 * Tutorial 3, Publish/Subscribe: emit_log and receive_logs as real processes, against the
 * real broker. The programs use the tutorial's fixed exchange `logs`, so everything that
 * touches it lives in this file and runs in sequence (the demo too).
 */
import { closeSync, openSync, readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import * as amqplib from "amqplib";
import { describe, expect, test } from "vitest";
import {
  ROOT,
  boundQueues,
  cleanUpPrograms,
  ok,
  queueExists,
  start,
  tracedQueue,
  tutorialUrl,
  useOwnVhost,
} from "./programs.js";

const WAITING = " [*] Waiting for logs. To exit press CTRL+C";

cleanUpPrograms();
useOwnVhost("pubsub");

/** Polls `read()` until `done` holds for what it returns; bounded, for files we cannot watch. */
async function eventually<T>(what: string, read: () => T, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; last seen: ${String(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.sequential("tutorial 3: publish/subscribe", () => {
  test("emit_log prints what it sent; with no arguments it sends 'info: Hello World!'", async () => {
    const receiver = await start("receive_logs");
    expect(await receiver.ready()).toBe(WAITING);

    expect(await ok("emit_log")).toEqual([" [x] Sent info: Hello World!"]);
    await receiver.line(" [x] info: Hello World!");

    // The arguments are joined by spaces, as in the tutorial's ' '.join(sys.argv[1:]).
    expect(await ok("emit_log", ["warning:", "disk", "almost", "full"])).toEqual([
      " [x] Sent warning: disk almost full",
    ]);
    await receiver.line(" [x] warning: disk almost full");

    expect((await receiver.stop()).code).toBe(0);
  });

  test("every running receiver gets every log, in order", async () => {
    const receivers = await Promise.all([start("receive_logs"), start("receive_logs")]);
    for (const r of receivers) await r.ready();

    const logs = ["info: one", "warning: two", "error: three"];
    for (const log of logs) {
      expect(await ok("emit_log", [log])).toEqual([` [x] Sent ${log}`]);
    }
    for (const r of receivers) {
      await r.until("all three logs", () => r.lines.length === 1 + logs.length);
      expect(r.lines).toEqual([WAITING, ...logs.map((log) => ` [x] ${log}`)]);
    }
  });

  test("a receiver started later gets only the logs emitted after it started", async () => {
    const early = await start("receive_logs");
    await early.ready();
    await ok("emit_log", ["before the late receiver"]);
    await early.line(" [x] before the late receiver");

    const late = await start("receive_logs");
    await late.ready();
    await ok("emit_log", ["after the late receiver"]);

    await early.line(" [x] after the late receiver");
    await late.line(" [x] after the late receiver");
    // The queue the late receiver gets did not exist when the first log was published.
    expect(late.lines).toEqual([WAITING, " [x] after the late receiver"]);
  });

  test.each(["SIGINT", "SIGTERM"] as const)(
    "on %s a receiver closes its connection, exits 0, and its exclusive queue is deleted",
    async (signal) => {
      const receiver = await start("receive_logs", ["--trace"]);
      await receiver.ready();
      const queue = tracedQueue(receiver);
      expect(queue).toMatch(/^amq\.gen-/);
      expect(await queueExists(queue)).toBe(true);
      expect(await boundQueues("logs")).toContain(queue);

      const exit = await receiver.stop(signal);
      expect(exit.code).toBe(0);
      // It said goodbye properly rather than dropping the socket.
      expect(exit.stderr).toContain("-> ch 0 connection.close ");
      expect(exit.stderr).toContain("<- ch 0 connection.close-ok");
      expect(await queueExists(queue)).toBe(false);
      // As the tutorial shows it: the binding went with the queue.
      expect(await boundQueues("logs")).not.toContain(queue);
    },
  );

  test("--trace prints every frame, decoded, to stderr and leaves stdout as it was", async () => {
    const receiver = await start("receive_logs");
    await receiver.ready();
    const program = await start("emit_log", ["--trace", "traced", "message"]);
    const exit = await program.exited;

    expect(exit.code).toBe(0);
    expect(exit.stdout).toEqual([" [x] Sent traced message"]);
    const trace = exit.stderr.split("\n").filter((line) => line !== "");
    // Sent and received, in handshake order, on channel 0 then channel 1.
    const names = trace.map((line) => /^(->|<-) ch \d+ ([\w.-]+)/.exec(line)?.slice(1, 3).join(" "));
    expect(names).toEqual(
      expect.arrayContaining([
        "<- connection.start",
        "-> connection.start-ok",
        "<- connection.tune",
        "-> connection.tune-ok",
        "-> connection.open",
        "<- connection.open-ok",
        "-> channel.open",
        "<- channel.open-ok",
        "-> exchange.declare",
        "<- exchange.declare-ok",
        "-> basic.publish",
        "-> content-header",
        "-> content-body",
        "-> connection.close",
        "<- connection.close-ok",
      ]),
    );
    expect(trace.find((line) => line.includes("exchange.declare "))).toContain('"logs"');
    expect(trace.find((line) => line.includes("content-body"))).toContain('"traced message"');
    await receiver.line(" [x] traced message");
  });

  test("piped output arrives line by line while the receiver is still running", async () => {
    const receiver = await start("receive_logs");
    await receiver.ready();
    for (const log of ["first", "second", "third"]) {
      await ok("emit_log", [log]);
      await receiver.line(` [x] ${log}`);
      expect(receiver.running).toBe(true);
    }
  });

  test("receive_logs > logs_from_rabbit.log writes each log to the file as it arrives", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warren-tutorial-"));
    const file = join(dir, "logs_from_rabbit.log");
    const fd = openSync(file, "w");
    try {
      const receiver = await start("receive_logs", [], {}, fd);
      const read = (): string => readFileSync(file, "utf8");
      await eventually("the waiting line in the file", read, (text) => text === `${WAITING}\n`);

      await ok("emit_log", ["error: saved to disk"]);
      await eventually("the log in the file", read, (text) => text.endsWith(" [x] error: saved to disk\n"));
      expect(receiver.running).toBe(true);
      expect(read()).toBe(`${WAITING}\n [x] error: saved to disk\n`);
      expect((await receiver.stop()).code).toBe(0);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("interop: logs published by amqplib reach warren's receive_logs", async () => {
    const receiver = await start("receive_logs");
    await receiver.ready();

    const text = "info: from amqplib, ünïcödé ✓";
    const conn = await amqplib.connect(await tutorialUrl());
    try {
      const ch = await conn.createConfirmChannel();
      await ch.checkExchange("logs");
      ch.publish("logs", "", Buffer.from(text));
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
    await receiver.line(` [x] ${text}`);
  });

  test("interop: warren's emit_log reaches an amqplib consumer, text unchanged", async () => {
    const text = "error: from warren, ünïcödé ✓";
    const conn = await amqplib.connect(await tutorialUrl());
    try {
      const ch = await conn.createChannel();
      await ok("emit_log"); // declares `logs` the way the tutorial does
      const { queue } = await ch.assertQueue("", { exclusive: true });
      await ch.bindQueue(queue, "logs", "");
      const received = new Promise<amqplib.ConsumeMessage>((resolve) => {
        void ch.consume(queue, (msg) => msg && resolve(msg), { noAck: true });
      });

      expect(await ok("emit_log", text.split(" "))).toEqual([` [x] Sent ${text}`]);
      const msg = await received;
      expect(msg.content.toString("utf8")).toBe(text);
      expect(msg.fields.exchange).toBe("logs");
      expect(msg.fields.routingKey).toBe("");
    } finally {
      await conn.close();
    }
  });

  async function runDemo(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, ["--import", "tsx", "src/tutorial/demo.ts"], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    return { code, stdout, stderr };
  }

  test("npm run demo: two receivers, a few logs, the bindings, and the queues gone; exit 0", async () => {
    const url = await tutorialUrl();
    const { code, stdout, stderr } = await runDemo({ ...process.env, AMQP_URL: url });

    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain("Both receivers got all 3 logs");
    expect(stdout.match(/ \[x\] error: the coffee machine is on fire/g)).toHaveLength(2);
    expect(stdout.match(/^  logs\texchange\tamq\.gen-\S+\tqueue\t/gm)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(stdout.match(/receiver \d exited with code 0/g)).toHaveLength(2);
    expect(stdout.match(/amq\.gen-\S+: gone \(passive queue\.declare -> 404 NOT_FOUND\)/g)).toHaveLength(2);
  }, 60_000);

  test("npm run demo, where rabbitmqctl answers for another broker: it says so, and shows the bindings from the trace", async () => {
    const url = await tutorialUrl();
    // A rabbitmqctl that lists nothing stands in for one that reaches another node.
    const { code, stdout, stderr } = await runDemo({ ...process.env, AMQP_URL: url, WARREN_RABBITMQCTL: "true" });
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain("rabbitmqctl here answers for another broker than");
    expect(stdout.match(/receiver \d: .*queue\.bind /g)?.length ?? 0).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
