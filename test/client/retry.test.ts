/**
 * declareRetryTopology: retry after a delay, N attempts, then the parking queue, with TTL and
 * dead-lettering (so on every broker CI runs: RabbitMQ 4.3 and 3.10). Every message is counted by
 * id: each handler call, what was parked, what is left anywhere.
 */
import { describe, expect, test } from "vitest";
import { declareRetryTopology, type Channel, type Message } from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { eventually, queueCounts, untilReady, useConnections, useDurableQueues } from "./util.js";

const open = useConnections();
const deleteAfter = useDurableQueues(open);

async function drainIds(ch: Channel, queue: string): Promise<number[]> {
  const ids: number[] = [];
  for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
    ids.push(Number(m.properties.messageId));
  return ids.sort((a, b) => a - b);
}

describe("declareRetryTopology", () => {
  for (const queueType of ["quorum", "classic"] as const) {
    test(`${queueType}: a failed message comes back after the delay; after the last attempt it is parked, once; nothing is lost`, async () => {
      const conn = await open();
      const ch = await conn.openChannel();
      const queue = uniqueName(`retry-${queueType}`);
      const retry = await declareRetryTopology(ch, queue, { delay: 100, attempts: 3, queueType });
      deleteAfter(queue, retry.retryQueue, retry.parkingQueue);
      const n = 20;
      await ch.confirmSelect();
      await Promise.all(
        Array.from({ length: n }, (_, i) => ch.publish("", queue, String(i), { messageId: String(i) })),
      );

      // Even ids always fail (parked after 3 attempts); odd ids fail once, then succeed.
      const calls = new Map<number, number[]>();
      const succeeded: number[] = [];
      const consuming = await conn.openChannel();
      consuming.on("consumerError", () => undefined);
      await consuming.consume(
        queue,
        async (msg: Message) => {
          const id = Number(msg.properties.messageId);
          calls.set(id, [...(calls.get(id) ?? []), retry.attempt(msg)]);
          if (id % 2 === 0 || retry.attempt(msg) === 1) throw new Error(`fails: ${id}`);
          succeeded.push(id);
        },
        { settle: "auto", retry, concurrency: 4 },
      );
      const evens = Array.from({ length: n / 2 }, (_, i) => 2 * i);
      const odds = evens.map((e) => e + 1);
      await eventually(() => succeeded.length === n / 2, "every odd id to succeed", 400);
      await untilReady(ch, retry.parkingQueue, n / 2);
      await consuming.close();
      await retry.close();

      expect(succeeded.sort((a, b) => a - b)).toEqual(odds);
      for (const id of evens) expect(calls.get(id)).toEqual([1, 2, 3]);
      for (const id of odds) expect(calls.get(id)).toEqual([1, 2]);
      expect(await drainIds(ch, retry.parkingQueue)).toEqual(evens);
      expect((await queueCounts(ch, queue)).messageCount).toBe(0);
      expect((await queueCounts(ch, retry.retryQueue)).messageCount).toBe(0);
    });
  }

  test("bad options are refused before anything is declared", async () => {
    const ch = await (await open()).openChannel();
    await expect(declareRetryTopology(ch, "", { delay: 100, attempts: 3 })).rejects.toThrow(TypeError);
    await expect(declareRetryTopology(ch, "q", { delay: 0, attempts: 3 })).rejects.toThrow(RangeError);
    await expect(declareRetryTopology(ch, "q", { delay: 100, attempts: 0 })).rejects.toThrow(RangeError);
    await expect(ch.consume("q", () => undefined, { retry: {} as never })).rejects.toThrow(TypeError);
  });
});
