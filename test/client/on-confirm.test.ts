/**
 * publish(..., { onConfirm }): in confirm mode the broker's answer for a publish goes to its
 * callback, once, instead of through a promise that waits for it; the returned promise is that
 * of the write (backpressure). Counted by id on both sides, as users pipeline publishes: an
 * awaited loop, a nack, a return, a channel the broker closes, a lost connection, a close that
 * waits for the confirms, a batch, and a callback that throws.
 */
import { describe, expect, test } from "vitest";
import {
  ConnectionClosedError,
  NackError,
  NotFoundError,
  ReturnedError,
  connect,
  type Channel,
} from "../../src/index.js";
import { brokerAddress, getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { startProxy } from "../helpers/proxy.js";
import { outcome, queueCounts, untilReady, useConnections } from "./util.js";

const open = useConnections();

/** Each callback's outcomes by message id: a name per call, so a second call shows. */
function confirmations() {
  const by = new Map<string, string[]>();
  return {
    by,
    for(id: string) {
      return (err: Error | undefined) => {
        const seen = by.get(id) ?? [];
        seen.push(err === undefined ? "ack" : err.name);
        by.set(id, seen);
      };
    },
    /** Resolves once `n` ids have had their callback. */
    async reach(n: number) {
      while (by.size < n) await new Promise((r) => setTimeout(r, 5));
    },
  };
}

async function confirmChannel(): Promise<{ ch: Channel; queue: string }> {
  const ch = await (await open()).openChannel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  return { ch, queue };
}

/** The message ids in `queue`, taken with noAck. */
async function idsIn(ch: Channel, queue: string): Promise<string[]> {
  const ids: string[] = [];
  for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
    ids.push(m.properties.messageId!);
  return ids;
}

describe("publish with onConfirm", () => {
  test("an awaited loop of 3,000: each callback once with no error, every id in the queue, no promise waiting for a confirm", async () => {
    const { ch, queue } = await confirmChannel();
    const c = confirmations();
    const ids = Array.from({ length: 3000 }, (_, i) => `m${i}`);
    for (const id of ids) await ch.publish("", queue, id, { messageId: id, onConfirm: c.for(id) });
    await c.reach(ids.length);
    expect([...c.by.keys()].sort()).toEqual([...ids].sort());
    expect([...c.by.values()].every((seen) => seen.length === 1 && seen[0] === "ack")).toBe(true);
    await ch.waitForConfirms(); // nothing left unconfirmed
    expect((await idsIn(ch, queue)).sort()).toEqual([...ids].sort());
  });

  test("a nack and a return reach the callback (NackError, ReturnedError); the write's promise resolves for each", async () => {
    const { ch } = await confirmChannel();
    const { queue } = await ch.queueDeclare("", {
      exclusive: true,
      arguments: { "x-max-length": 2, "x-overflow": "reject-publish" },
    });
    const c = confirmations();
    ch.on("return", () => undefined);
    const writes = ["a", "b", "c", "d"].map((id) => outcome(ch.publish("", queue, id, { onConfirm: c.for(id) })));
    writes.push(outcome(ch.publish("", uniqueName("nowhere"), "r", { mandatory: true, onConfirm: c.for("returned") })));
    expect((await Promise.all(writes)).every((r) => r.ok)).toBe(true);
    await c.reach(5);
    expect(Object.fromEntries(c.by)).toEqual({
      a: ["ack"],
      b: ["ack"],
      c: ["NackError"],
      d: ["NackError"],
      returned: ["ReturnedError"],
    });
    expect((await queueCounts(ch, queue)).messageCount).toBe(2);
  });

  test("a channel the broker closes: every unconfirmed callback once with its reason, the refused publish's too, and a publish after the close gets the reason as its refusal", async () => {
    const { ch, queue } = await confirmChannel();
    const c = confirmations();
    const errors = new Map<string, Error | undefined>();
    const keep = (id: string) => (err: Error | undefined) => (errors.set(id, err), c.for(id)(err));
    await ch.publish("", queue, "fine", { onConfirm: keep("fine") }); // written; its confirm comes to the callback
    await c.reach(1);
    const closed = new Promise<void>((resolve) => ch.once("close", () => resolve()));
    void ch.publish("", queue, "unconfirmed", { onConfirm: keep("unconfirmed") });
    void ch.publish(uniqueName("missing-x"), "", "refused", { onConfirm: keep("refused") }); // 404 closes the channel
    void ch.publish("", queue, "behind", { onConfirm: keep("behind") }); // written before the close arrives
    await closed;
    await c.reach(3);
    expect(errors.get("refused")).toBeInstanceOf(NotFoundError);
    expect(errors.get("behind")).toBe(errors.get("refused"));
    // RabbitMQ may ack the one just before the failing publish, or close first: never both, never neither.
    const unconfirmed = errors.get("unconfirmed");
    if (unconfirmed !== undefined) expect(unconfirmed).toBe(errors.get("refused"));
    expect(c.by.get("fine")).toEqual(["ack"]);
    const after = await outcome(ch.publish("", queue, "late", { onConfirm: keep("late") }));
    expect(after.ok).toBe(true); // refused: the callback has it
    await c.reach(4);
    expect(errors.get("late")).toBe(errors.get("refused"));
    await new Promise((r) => setTimeout(r, 20));
    expect([...c.by.values()].every((seen) => seen.length === 1)).toBe(true);
  });

  test("a lost connection: each of 100 callbacks once with a ConnectionClosedError, by id", async () => {
    const url = await getBrokerUrl();
    const proxy = await startProxy({ target: brokerAddress(url) });
    try {
      const conn = await connect({ url: proxy.url(url), heartbeat: 0 });
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      await ch.confirmSelect();
      const c = confirmations();
      const ids = Array.from({ length: 100 }, (_, i) => `m${i}`);
      for (const id of ids) void ch.publish("", queue, id, { onConfirm: c.for(id) });
      proxy.resetAll(); // before the publishes have even left: none can be confirmed
      await new Promise<void>((resolve) => conn.once("close", () => resolve()));
      expect([...c.by.keys()].sort()).toEqual([...ids].sort());
      expect([...c.by.values()].every((seen) => seen.join() === "ConnectionClosedError")).toBe(true);
      await conn.close();
    } finally {
      await proxy.close();
    }
  });

  test("close() waits for the confirms of callback publishes: every callback has run, no error, before it resolves", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const q = uniqueName("on-confirm-close");
    await ch.queueDeclare(q);
    await ch.confirmSelect();
    const c = confirmations();
    for (let i = 0; i < 500; i++) void ch.publish("", q, String(i), { onConfirm: c.for(String(i)) });
    await ch.close();
    expect(c.by.size).toBe(500);
    expect([...c.by.values()].every((seen) => seen.join() === "ack")).toBe(true);
    const probe = await conn.openChannel();
    await untilReady(probe, q, 500);
    await probe.queueDelete(q);
  });

  test("a callback that closes the channel midway, and one that closes the connection after the last confirm, as users end a pipeline: each callback once, by id, every message in the queue", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const q = uniqueName("on-confirm-close-inside");
    await ch.queueDeclare(q);
    await ch.confirmSelect();
    const c = confirmations();
    const ids = Array.from({ length: 500 }, (_, i) => `m${i}`);
    let closing: Promise<void> | undefined;
    for (const id of ids)
      void ch.publish("", q, id, {
        messageId: id,
        onConfirm: (err) => {
          c.for(id)(err);
          // close() waits for the confirms still outstanding: the rest come to their callbacks.
          if (c.by.size === 250) closing = ch.close();
        },
      });
    await c.reach(ids.length);
    await closing;
    expect(ch.closed).toBe(true);
    expect([...c.by.values()].every((seen) => seen.join() === "ack")).toBe(true);

    const conn2 = await open();
    const ch2 = await conn2.openChannel();
    await ch2.confirmSelect();
    const more = Array.from({ length: 200 }, (_, i) => `n${i}`);
    const d = confirmations();
    const closed = new Promise<void>((resolve) => conn2.once("close", () => resolve()));
    for (const id of more)
      await ch2.publish("", q, id, {
        messageId: id,
        onConfirm: (err) => {
          d.for(id)(err);
          if (d.by.size === more.length) void conn2.close();
        },
      });
    await closed;
    expect([...d.by.keys()].sort()).toEqual([...more].sort());
    expect([...d.by.values()].every((seen) => seen.join() === "ack")).toBe(true);
    const probe = await conn.openChannel();
    expect((await idsIn(probe, q)).sort()).toEqual([...ids, ...more].sort());
    await probe.queueDelete(q);
  });

  test("refused before it is written, the refusal is the callback's and the promise resolves: outside confirm mode, a bad body, a closed channel; a callback that is no function rejects", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const calls: Error[] = [];
    const onConfirm = (err: Error | undefined) => void calls.push(err!);
    expect((await outcome(ch.publish("", queue, "x", { onConfirm }))).ok).toBe(true);
    await ch.confirmSelect();
    expect((await outcome(ch.publish("", queue, 42 as never, { onConfirm }))).ok).toBe(true);
    const bad = await outcome(ch.publish("", queue, "x", { onConfirm: 42 as never }));
    expect((bad as { error: Error }).error.message).toMatch(/onConfirm must be a function, got number/);
    expect((await queueCounts(ch, queue)).messageCount).toBe(0); // nothing was sent
    await ch.close();
    expect((await outcome(ch.publish("", queue, "x", { onConfirm }))).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls.map((e) => e.message)).toEqual([
      expect.stringMatching(/onConfirm needs confirm mode/),
      expect.stringMatching(/publish body must be a string, Buffer or Uint8Array, got number/),
      expect.stringMatching(/channel closed by the client/),
    ]);
    expect(calls.map((e) => e.name)).toEqual(["TypeError", "TypeError", "ChannelClosedError"]);
  });

  test("in a batch, a message with onConfirm gets its callback; the batch resolves once all are written or confirmed, in order", async () => {
    const { ch, queue } = await confirmChannel();
    const c = confirmations();
    await ch.publishBatch(
      ["b0", "b1", "b2", "b3"].map((id, i) => ({
        exchange: "",
        routingKey: queue,
        body: id,
        options: i % 2 === 1 ? { messageId: id, onConfirm: c.for(id) } : { messageId: id },
      })),
    );
    await c.reach(2);
    expect(Object.fromEntries(c.by)).toEqual({ b1: ["ack"], b3: ["ack"] });
    await ch.waitForConfirms();
    expect(await idsIn(ch, queue)).toEqual(["b0", "b1", "b2", "b3"]);
  });

  test("a callback that throws is a process warning; the others still run and the channel stays open", async () => {
    const { ch, queue } = await confirmChannel();
    const warned = new Promise<Error>((resolve) => process.once("warning", resolve));
    const c = confirmations();
    void ch.publish("", queue, "boom", {
      onConfirm: () => {
        throw new Error("the caller's bug");
      },
    });
    for (const id of ["after-1", "after-2"]) void ch.publish("", queue, id, { onConfirm: c.for(id) });
    expect((await warned).message).toMatch(/onConfirm callback threw: Error: the caller's bug/);
    await c.reach(2);
    expect(Object.fromEntries(c.by)).toEqual({ "after-1": ["ack"], "after-2": ["ack"] });
    expect(ch.closed).toBe(false);
    expect((await queueCounts(ch, queue)).messageCount).toBe(3);
  });
});
