/**
 * Callback consumers with async handlers: `concurrency` (how many run at once, default 1),
 * `settle: "auto"` (ack on success, nack on failure with a requeue policy), and
 * `consumer.cancel({ drain: true })`. Every test counts deliveries by message id on both sides:
 * what the handlers saw and what the broker still holds (or dead-lettered).
 */
import { describe, expect, test } from "vitest";
import type { Channel, FieldTable, Message } from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { eventually, queueCounts, useConnections } from "./util.js";

const open = useConnections();

/** A queue of `n` messages, ids 0 to n-1; exclusive (to the connection) unless a name is given. */
async function filled(ch: Channel, n: number, args: FieldTable = {}, name = ""): Promise<string> {
  const { queue } = await ch.queueDeclare(name, { exclusive: name === "", arguments: args });
  await ch.confirmSelect();
  await Promise.all(Array.from({ length: n }, (_, i) => ch.publish("", queue, String(i), { messageId: String(i) })));
  return queue;
}

/** A queue that dead-letters into another through the default exchange; returns both names. */
async function withDeadLetters(ch: Channel, n: number): Promise<{ queue: string; dead: string }> {
  const { queue: dead } = await ch.queueDeclare("", { exclusive: true });
  const queue = await filled(ch, n, { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead });
  return { queue, dead };
}

async function drainIds(ch: Channel, queue: string): Promise<number[]> {
  const ids: number[] = [];
  for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
    ids.push(Number(m.properties.messageId));
  return ids.sort((a, b) => a - b);
}

/**
 * Close the consuming channel: what it had not acked the broker requeues. The queue (exclusive
 * to the connection, not the channel) is then empty only if every delivery was acked.
 */
async function expectAllAcked(ch: Channel, queue: string): Promise<void> {
  await ch.close();
  const check = await ch.connection.openChannel();
  expect((await queueCounts(check, queue)).messageCount).toBe(0);
}

/**
 * `n` messages, all delivered at once (prefetch n) to a consumer whose handlers wait for
 * `release()`; resolves once `concurrency` handlers are running.
 */
async function gated(
  ch: Channel,
  n: number,
  concurrency: number,
  o: { name?: string; prefetch?: number | "default" } = {},
) {
  const queue = await filled(ch, n, {}, o.name);
  if (o.prefetch !== "default") await ch.prefetch(o.prefetch ?? n);
  const started: number[] = [];
  const finished: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const consumer = await ch.consume(
    queue,
    async (msg) => {
      const id = Number(msg.properties.messageId);
      started.push(id);
      await gate;
      finished.push(id);
    },
    { settle: "auto", concurrency },
  );
  await eventually(() => started.length === concurrency, `${concurrency} handlers running`);
  return { queue, started, finished, release, consumer };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("concurrency", () => {
  for (const concurrency of [undefined, 3]) {
    test(`${concurrency ?? "default (1)"}: never more handlers running at once; each delivery handled once`, async () => {
      const ch = await (await open()).openChannel();
      const N = 30;
      const queue = await filled(ch, N);
      await ch.prefetch(N); // the window would allow them all at once
      let running = 0;
      let most = 0;
      const seen: number[] = [];
      await ch.consume(
        queue,
        async (msg) => {
          most = Math.max(most, ++running);
          await sleep(2);
          seen.push(Number(msg.properties.messageId));
          running--;
        },
        { ...(concurrency === undefined ? {} : { concurrency }), settle: "auto" },
      );
      await eventually(() => seen.length === N, `${N} handled`);
      expect(most).toBe(concurrency ?? 1);
      if (concurrency === undefined)
        expect(seen).toEqual(range(N)); // one at a time: in order
      else expect([...seen].sort((a, b) => a - b)).toEqual(range(N));
      await expectAllAcked(ch, queue);
    });
  }

  test("bad options are refused before anything is sent", async () => {
    const ch = await (await open()).openChannel();
    await expect(ch.consume("q", () => undefined, { concurrency: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(ch.consume("q", () => undefined, { settle: "sometimes" as "auto" })).rejects.toBeInstanceOf(TypeError);
    expect(ch.closed).toBe(false); // no basic.consume for a missing queue went out
  });
});

describe('settle: "auto"', () => {
  test("acks what succeeded and nacks what failed: with requeue false, exactly the failed ids are dead-lettered", async () => {
    const ch = await (await open()).openChannel();
    const N = 40;
    const { queue, dead } = await withDeadLetters(ch, N);
    const failedIds: number[] = [];
    ch.on("consumerError", (_err, msg) => failedIds.push(Number(msg.properties.messageId)));
    const handled: number[] = [];
    await ch.consume(
      queue,
      async (msg) => {
        const id = Number(msg.properties.messageId);
        handled.push(id);
        if (id % 4 === 1) throw new Error(`fails on ${id}`);
      },
      { settle: "auto", requeue: false, concurrency: 4 },
    );
    const failing = range(N).filter((i) => i % 4 === 1);
    await eventually(
      async () => (await queueCounts(ch, dead)).messageCount === failing.length,
      "the failed ones dead-lettered",
    );
    expect([...handled].sort((a, b) => a - b)).toEqual(range(N)); // each once: nothing requeued
    expect([...failedIds].sort((a, b) => a - b)).toEqual(failing);
    expect(await drainIds(ch, dead)).toEqual(failing);
    await expectAllAcked(ch, queue);
  });

  test("the default policy requeues a failure once, then dead-letters it", async () => {
    const ch = await (await open()).openChannel();
    const { queue, dead } = await withDeadLetters(ch, 1);
    ch.on("consumerError", () => undefined);
    const deliveries: boolean[] = [];
    await ch.consume(
      queue,
      (msg: Message) => {
        deliveries.push(msg.fields.redelivered);
        throw new Error("always fails");
      },
      { settle: "auto" },
    );
    await eventually(async () => (await queueCounts(ch, dead)).messageCount === 1, "dead-lettered");
    expect(deliveries).toEqual([false, true]);
    expect(await drainIds(ch, dead)).toEqual([0]);
  });
});

describe("cancel({ drain: true })", () => {
  test("waits for the running handlers and their acks; the deliveries no handler started go back to the queue", async () => {
    const ch = await (await open()).openChannel();
    const N = 10;
    const { queue, started, finished, release, consumer } = await gated(ch, N, 2);
    await eventually(async () => (await queueCounts(ch, queue)).messageCount === 0, "all delivered (prefetch 10)");
    const cancelled = consumer.cancel({ drain: true });
    setTimeout(release, 50);
    await cancelled;
    // Resolved after the two handlers finished; the other eight were never started.
    expect(finished).toEqual(started);
    expect(started).toEqual([0, 1]);
    await eventually(async () => (await queueCounts(ch, queue)).messageCount === N - 2, `${N - 2} back in the queue`);
    expect(await drainIds(ch, queue)).toEqual(range(N).slice(2));
  });
});

describe("channel.close() with handlers running", () => {
  test("stops new deliveries, waits for the running handlers and their acks, and requeues what no handler started", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const N = 10;
    const { queue, started, finished, release } = await gated(ch, N, 3);
    const closed = ch.close();
    setTimeout(release, 50);
    await closed;
    expect(finished).toEqual([0, 1, 2]);
    expect(started).toEqual([0, 1, 2]); // nothing started after the close began
    const check = await conn.openChannel();
    await eventually(
      async () => (await queueCounts(check, queue)).messageCount === N - 3,
      `${N - 3} back in the queue`,
    );
    expect(await drainIds(check, queue)).toEqual(range(N).slice(3));
  });
});

describe("connection.close() with handlers running", () => {
  test("stops new deliveries, waits for the running handlers and their acks, then closes; what no handler started is requeued", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const N = 10;
    const name = uniqueName("close-drain");
    const { queue, started, finished, release } = await gated(ch, N, 3, { name });
    const check = await (await open()).openChannel();
    try {
      const closed = conn.close();
      setTimeout(release, 50);
      await closed;
      expect(finished).toEqual([0, 1, 2]);
      expect(started).toEqual([0, 1, 2]);
      await eventually(
        async () => (await queueCounts(check, queue)).messageCount === N - 3,
        `${N - 3} back in the queue`,
      );
      expect(await drainIds(check, queue)).toEqual(range(N).slice(3));
    } finally {
      await check.queueDelete(name);
    }
  });

  test("a second close() while the handlers finish resolves with the first", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { release, finished } = await gated(ch, 2, 1);
    const first = conn.close();
    const second = conn.close();
    setTimeout(release, 30);
    await Promise.all([first, second]);
    expect(finished).toEqual([0]);
    expect(conn.closed).toBe(true);
  });
});

describe("prefetch fits concurrency", () => {
  test("on a channel with no prefetch, a consumer given concurrency n gets 2n deliveries at a time, no more", async () => {
    const ch = await (await open()).openChannel();
    const N = 20;
    const { queue, started, finished, release } = await gated(ch, N, 3, { prefetch: "default" });
    await eventually(async () => (await queueCounts(ch, queue)).messageCount === N - 6, "six delivered");
    await new Promise((r) => setTimeout(r, 100));
    expect((await queueCounts(ch, queue)).messageCount).toBe(N - 6);
    expect(started).toEqual([0, 1, 2]);
    release();
    await eventually(() => finished.length === N, "every one handled as handlers finish");
    expect([...finished].sort((a, b) => a - b)).toEqual(range(N));
    await expectAllAcked(ch, queue);
  });

  test("a prefetch set on the channel is kept", async () => {
    const ch = await (await open()).openChannel();
    const N = 10;
    const { queue, finished, release } = await gated(ch, N, 2, { prefetch: 3 });
    await new Promise((r) => setTimeout(r, 100));
    expect((await queueCounts(ch, queue)).messageCount).toBe(N - 3);
    release();
    await eventually(() => finished.length === N, "every one handled");
    await expectAllAcked(ch, queue);
  });
});

describe("consumerTimeout: a warning before the broker acts", () => {
  test("a delivery still unsettled at warnAt of the timeout is reported once; settled ones never are", async () => {
    const ch = await (await open()).openChannel();
    const queue = await filled(ch, 3);
    const warnings: [string, number][] = [];
    ch.on("consumerTimeoutWarning", (msg, heldFor) => warnings.push([msg.properties.messageId!, heldFor]));
    const slow: Message[] = [];
    await ch.consume(
      queue,
      (msg) => {
        if (msg.properties.messageId === "1")
          slow.push(msg); // held
        else msg.ack();
      },
      { consumerTimeout: 400, warnAt: 0.5 },
    );
    await eventually(() => warnings.length === 1, "the warning");
    expect(warnings[0]![0]).toBe("1");
    expect(warnings[0]![1]).toBeGreaterThanOrEqual(200);
    await sleep(300); // more sweeps: no second warning for the same delivery
    expect(warnings.map(([id]) => id)).toEqual(["1"]);
    expect(slow[0]!.ack()).toBeUndefined();
    await expectAllAcked(ch, queue);
  });

  test("bad options are refused", async () => {
    const ch = await (await open()).openChannel();
    await expect(ch.consume("q", () => undefined, { consumerTimeout: 0 })).rejects.toBeInstanceOf(RangeError);
    await expect(ch.consume("q", () => undefined, { consumerTimeout: 1000, warnAt: 2 })).rejects.toBeInstanceOf(
      RangeError,
    );
  });
});
