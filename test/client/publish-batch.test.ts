/**
 * publishBatch(): the messages go out as publish() would send them one by one, in order, with
 * one promise that settles once every message has; a failure names the message by its index.
 * Counted by id on both sides: what the batch says went out is exactly what the queue holds.
 */
import { randomBytes } from "node:crypto";
import diagnostics from "node:diagnostics_channel";
import net from "node:net";
import { describe, expect, test } from "vitest";
import {
  ChannelClosedError,
  NackError,
  PublishBatchError,
  ReturnedError,
  type Channel,
  type Publication,
} from "../../src/index.js";
import { brokerAddress, getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { startProxy } from "../helpers/proxy.js";
import { outcome, untilReady, useConnections, watchConfirmWindow } from "./util.js";

const open = useConnections();

/** Every message in the queue, by message id, in the order the queue holds them. */
async function drain(ch: Channel, queue: string): Promise<number[]> {
  const got: number[] = [];
  for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
    got.push(Number(m.properties.messageId));
  return got;
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => i);
const batchTo = (queue: string, n: number): Publication[] =>
  ids(n).map((i) => ({ exchange: "", routingKey: queue, body: `m${i}`, options: { messageId: String(i) } }));

/** The PublishBatchError a batch rejected with. */
async function failure(p: Promise<void>): Promise<PublishBatchError> {
  const r = await outcome(p);
  if (r.ok) throw new Error("the batch resolved");
  expect(r.error).toBeInstanceOf(PublishBatchError);
  return r.error as PublishBatchError;
}

describe("publishBatch outside confirm mode", () => {
  test("every message goes out, in order: the queue holds each id once", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const n = 3000;
    await ch.publishBatch(batchTo(queue, n));
    await untilReady(ch, queue, n);
    expect(await drain(ch, queue)).toEqual(ids(n));
  });

  test("it resolves only once the socket has drained below its high-water mark: awaited batches are backpressure", async () => {
    const url = await getBrokerUrl();
    // Through a proxy that stops reading, so that the kernel's buffers fill and the socket's own
    // buffer is what the batch runs into.
    const proxy = await startProxy({ target: brokerAddress(url) });
    let socket!: net.Socket;
    const conn = await open({
      heartbeat: 0,
      transport: () => (socket = net.connect({ host: proxy.host, port: proxy.port })),
    });
    try {
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      const body = randomBytes(256 * 1024);
      const batches = 4;
      const perBatch = 25;
      let waited = 0;
      proxy.pauseReading("up");
      for (let b = 0; b < batches; b++) {
        const p = ch.publishBatch(
          ids(perBatch).map((i) => ({
            exchange: "",
            routingKey: queue,
            body,
            options: { messageId: String(b * perBatch + i) },
          })),
        );
        if (socket.writableNeedDrain) {
          waited++;
          proxy.resumeReading("up"); // the wait is seen: let it drain
        }
        await p;
        expect(socket.writableNeedDrain, `after batch ${b}`).toBe(false);
      }
      expect(waited).toBeGreaterThan(0); // 6 MiB a batch cannot all fit in the kernel
      await untilReady(ch, queue, batches * perBatch);
      expect(await drain(ch, queue)).toEqual(ids(batches * perBatch));
    } finally {
      await conn.close();
      await proxy.close();
    }
  });

  test("an empty batch resolves; a bad message fails alone, by its index, and the rest go out", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await expect(ch.publishBatch([])).resolves.toBeUndefined();
    await expect(ch.publishBatch("nope" as unknown as Publication[])).rejects.toBeInstanceOf(TypeError);
    const batch = batchTo(queue, 6);
    batch[1] = { ...batch[1]!, body: 42 as unknown as string };
    batch[3] = null as unknown as Publication;
    batch[4] = { ...batch[4]!, options: { messageId: "4", priority: 300 } }; // an octet
    const err = await failure(ch.publishBatch(batch));
    expect(err.failures.map((f) => f.index)).toEqual([1, 3, 4]);
    expect(err.failures.map((f) => (f.error as Error).constructor.name)).toEqual([
      "TypeError",
      "TypeError",
      "RangeError",
    ]);
    expect(err.recoverable).toBe(false);
    await untilReady(ch, queue, 3);
    expect(await drain(ch, queue)).toEqual([0, 2, 5]);
    expect(ch.closed).toBe(false);
  });
});

describe("publishBatch in confirm mode", () => {
  test("it resolves once the broker has every message: the queue holds them all at once, each id once, in order", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    const n = 5000;
    await ch.publishBatch(batchTo(queue, n));
    // Resolved means confirmed: no polling needed.
    expect((await ch.queueDeclare(queue, { passive: true })).messageCount).toBe(n);
    expect(await drain(ch, queue)).toEqual(ids(n));
    await ch.waitForConfirms(); // nothing left
  });

  test("maxUnconfirmed holds on the wire across the batch and the publishes made around it, which keep their order", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect({ maxUnconfirmed: 8 });
    const wire = watchConfirmWindow(conn);
    try {
      const before = Array.from({ length: 20 }, (_, i) => ch.publish("", queue, "", { messageId: String(i) }));
      const batch = ch.publishBatch(
        ids(400).map((i) => ({ exchange: "", routingKey: queue, body: "", options: { messageId: String(20 + i) } })),
      );
      const after = Array.from({ length: 20 }, (_, i) => ch.publish("", queue, "", { messageId: String(420 + i) }));
      await Promise.all([...before, batch, ...after]);
      expect(wire.written).toBe(440);
    } finally {
      wire.stop();
    }
    expect(wire.most).toBeGreaterThan(1); // it did pipeline
    expect(wire.most).toBeLessThanOrEqual(8);
    expect(await drain(ch, queue)).toEqual(ids(440));
  });

  test("a message with a signal or timeout of its own goes through publish(), and the batch stays in order around it", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect({ maxUnconfirmed: 4 });
    const batch = batchTo(queue, 60);
    // #4 is the first the window has no room for: it waits, and what follows must wait behind it.
    batch[4] = { ...batch[4]!, options: { messageId: "4", signal: new AbortController().signal } };
    batch[30] = { ...batch[30]!, options: { messageId: "30", timeout: 10_000 } };
    await ch.publishBatch(batch);
    expect(await drain(ch, queue)).toEqual(ids(60));
  });

  test("a batch waits behind the publishes made before it, even when its first message is refused", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect({ maxUnconfirmed: 2 });
    const earlier = ids(3).map((i) => ch.publish("", queue, "", { messageId: String(i) })); // #2 waits for room
    const batch = ch.publishBatch([
      null as unknown as Publication,
      ...ids(3).map((i) => ({ exchange: "", routingKey: queue, body: "", options: { messageId: String(3 + i) } })),
    ]);
    await Promise.all(earlier);
    expect((await failure(batch)).failures.map((f) => f.index)).toEqual([0]);
    expect(await drain(ch, queue)).toEqual(ids(6));
  });

  test("with a warren:publish tracing subscriber, each message is traced as its own publish, in order", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect({ maxUnconfirmed: 4 });
    const traced: string[] = [];
    const handlers = {
      start: (ctx: unknown) =>
        void traced.push(String((ctx as { properties: { messageId?: string } }).properties.messageId)),
    };
    const channel = diagnostics.tracingChannel("warren:publish");
    channel.subscribe(handlers);
    try {
      await ch.publishBatch(batchTo(queue, 20));
    } finally {
      channel.unsubscribe(handlers);
    }
    expect(traced).toEqual(ids(20).map(String));
    expect(await drain(ch, queue)).toEqual(ids(20));
  });

  test("nacked messages are named by index (NackError); the rest are acked and in the queue (x-max-length + reject-publish)", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", {
      exclusive: true,
      arguments: { "x-max-length": 5, "x-overflow": "reject-publish" },
    });
    await ch.confirmSelect();
    const err = await failure(ch.publishBatch(batchTo(queue, 20)));
    expect(err.failures.map((f) => f.index)).toEqual(ids(20).slice(5));
    for (const f of err.failures) expect(f.error).toBeInstanceOf(NackError);
    expect(err.recoverable).toBe(true);
    expect(await drain(ch, queue)).toEqual(ids(5));
    expect(ch.closed).toBe(false);
  });

  test("mandatory messages no queue takes are named by index (ReturnedError); the routed ones are in the queue", async () => {
    const ch = await (await open()).openChannel();
    const x = uniqueName("batch-mandatory");
    await ch.exchangeDeclare(x, "direct", { autoDelete: true });
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, x, "routed");
    await ch.confirmSelect();
    const routed = (i: number) => i % 3 !== 0;
    const err = await failure(
      ch.publishBatch(
        ids(300).map((i) => ({
          exchange: x,
          routingKey: routed(i) ? "routed" : "nowhere",
          body: `body ${i % 7}`,
          options: { mandatory: true, messageId: String(i) },
        })),
      ),
    );
    expect(err.failures.map((f) => f.index)).toEqual(ids(300).filter((i) => !routed(i)));
    for (const f of err.failures) expect(f.error).toMatchObject({ replyCode: 312, exchange: x, routingKey: "nowhere" });
    expect(err.failures[0]!.error).toBeInstanceOf(ReturnedError);
    expect(await drain(ch, queue)).toEqual(ids(300).filter(routed));
  });

  test("a channel the broker closes mid-batch fails every message not yet confirmed with its reason, and no message is left unsettled", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    const n = 200;
    const batch = batchTo(queue, n);
    batch[100] = { exchange: uniqueName("missing-x"), routingKey: "", body: "refused" }; // 404 closes the channel
    const err = await failure(ch.publishBatch(batch));
    const failed = err.failures.map((f) => f.index);
    expect(failed).toContain(100);
    for (const f of err.failures) expect(f.error).toBeInstanceOf(ChannelClosedError);
    // Everything after the refused one fails. Every one before it that the broker acked is in
    // the queue; one it took but closed the channel before acking fails (and may be there too).
    expect(failed.filter((i) => i > 100)).toEqual(ids(n).slice(101));
    const inQueue = await drain(await conn.openChannel(), queue);
    expect(inQueue.every((i) => i < 100)).toBe(true);
    expect(inQueue.filter((i) => !failed.includes(i))).toEqual(ids(100).filter((i) => !failed.includes(i)));
  });

  test("a channel that closes while the batch waits for room in the window fails the rest of it with the close reason", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect({ maxUnconfirmed: 2 });
    const batch = batchTo(queue, 50);
    batch[10] = { exchange: uniqueName("missing-x"), routingKey: "", body: "refused" }; // 404 closes the channel
    const err = await failure(ch.publishBatch(batch));
    const failed = err.failures.map((f) => f.index);
    for (const f of err.failures) expect(f.error).toBeInstanceOf(ChannelClosedError);
    expect(failed.filter((i) => i >= 10)).toEqual(ids(50).slice(10)); // none written after the refused one went unsettled
    const inQueue = await drain(await conn.openChannel(), queue);
    expect(inQueue.filter((i) => !failed.includes(i))).toEqual(ids(10).filter((i) => !failed.includes(i)));
  });

  test("on a closed channel every message fails with the close reason", async () => {
    const ch = await (await open()).openChannel();
    await ch.close();
    const err = await failure(ch.publishBatch(batchTo("q", 3)));
    expect(err.failures.map((f) => f.index)).toEqual([0, 1, 2]);
    for (const f of err.failures) expect(f.error).toBeInstanceOf(ChannelClosedError);
  });
});
