/**
 * Publisher confirms (RabbitMQ extension, class confirm): after confirm.select every publish's
 * promise resolves on the broker's basic.ack and rejects with NackError on basic.nack; a
 * channel or connection that dies first rejects every publish still unconfirmed with its
 * reason. Nacks are provoked honestly: a queue with x-max-length and x-overflow reject-publish
 * nacks what it cannot take.
 */
import { describe, expect, test } from "vitest";
import {
  AbortError,
  ConnectionClosedError,
  NackError,
  NotFoundError,
  PreconditionFailedError,
  ReturnedError,
  TimeoutError,
  connect,
  type ReturnedMessage,
} from "../../src/index.js";
import { brokerAddress, getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { longstr, methodFrame, standardHandshake, startFakeServer } from "../helpers/fake-server.js";
import { startProxy } from "../helpers/proxy.js";
import { outcome, queueCounts, untilReady, useConnections, watchConfirmWindow } from "./util.js";

const open = useConnections();

/** A fake server that opens a channel in confirm mode and never confirms; it counts the basic.publish frames it reads. */
async function neverConfirms() {
  const publishes = { count: 0 };
  const server = await startFakeServer(async (c) => {
    await standardHandshake(c);
    const ch = await c.expectMethod(20, 10);
    await c.send(methodFrame(ch.channel, 20, 11, longstr("")));
    await c.expectMethod(85, 10); // confirm.select
    await c.send(methodFrame(ch.channel, 85, 11));
    for (
      let m = await c.readMethod().catch(() => undefined);
      m !== undefined;
      m = await c.readMethod().catch(() => undefined)
    ) {
      if (m.classId === 60 && m.methodId === 40) publishes.count++;
    }
  });
  return { server, publishes };
}

describe("mandatory publishes in confirm mode", () => {
  // RabbitMQ acks an unroutable mandatory publish right after returning it: the ack alone would
  // say "the broker has it" of a message it dropped.
  test("the ones the broker returns reject with ReturnedError (312 NO_ROUTE), the routed ones resolve: counted by id on both sides", async () => {
    const ch = await (await open()).openChannel();
    const x = uniqueName("mandatory");
    await ch.exchangeDeclare(x, "direct", { autoDelete: true });
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, x, "routed");
    const returns: ReturnedMessage[] = [];
    ch.on("return", (r) => returns.push(r));
    await ch.confirmSelect();
    const N = 300;
    // Every third is unroutable; bodies repeat, so a return is matched by exchange and routing key as well as by body.
    const routed = (i: number) => i % 3 !== 0;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        outcome(
          ch.publish(x, routed(i) ? "routed" : "nowhere", `body ${i % 7}`, { mandatory: true, messageId: String(i) }),
        ),
      ),
    );
    const rejected = results.flatMap((r, i) => (r.ok ? [] : [i]));
    const expectedReturned = Array.from({ length: N }, (_, i) => i).filter((i) => !routed(i));
    expect(rejected).toEqual(expectedReturned);
    for (const i of rejected) {
      const r = results[i]!;
      expect(!r.ok && r.error).toBeInstanceOf(ReturnedError);
      expect(!r.ok && r.error).toMatchObject({
        replyCode: 312,
        replyText: "NO_ROUTE",
        exchange: x,
        routingKey: "nowhere",
      });
    }
    expect(returns.map((r) => Number(r.properties.messageId)).sort((a, b) => a - b)).toEqual(expectedReturned);
    // The queue holds exactly the publishes that resolved.
    const got: number[] = [];
    for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
      got.push(Number(m.properties.messageId));
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i).filter(routed));
  });

  test("without mandatory, an unroutable publish resolves (the broker acks it; nothing comes back)", async () => {
    const ch = await (await open()).openChannel();
    await ch.confirmSelect();
    await expect(ch.publish("", uniqueName("no-such-queue"), "dropped")).resolves.toBeUndefined();
  });
});

describe("confirmSelect({ maxUnconfirmed })", () => {
  test("never more publishes awaiting their confirm than the limit, on the wire; all go out, in order, and all are in the queue", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect({ maxUnconfirmed: 8 });
    // Count on the wire: publishes written minus publishes the broker has confirmed.
    const wire = watchConfirmWindow(conn);
    try {
      const N = 400;
      await Promise.all(
        Array.from({ length: N }, (_, i) => ch.publish("", queue, String(i), { messageId: String(i) })),
      );
      expect(wire.written).toBe(N);
      expect(wire.most).toBeGreaterThan(1); // it did pipeline
      expect(wire.most).toBeLessThanOrEqual(8);
      const got: string[] = [];
      for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
        got.push(m.body.toString());
      expect(got).toEqual(Array.from({ length: N }, (_, i) => String(i)));
    } finally {
      wire.stop();
    }
  });

  test("a publish waiting for room honours its timeout and signal and is never sent; a bad limit or timeout is refused", async () => {
    const { server, publishes } = await neverConfirms();
    const conn = await connect({ url: server.url(), timeout: 5000 });
    try {
      const ch = await conn.openChannel();
      await expect(ch.confirmSelect({ maxUnconfirmed: 0 })).rejects.toBeInstanceOf(RangeError);
      await ch.confirmSelect({ maxUnconfirmed: 1 });
      const first = outcome(ch.publish("", "q", "first"));
      const timed = await outcome(ch.publish("", "q", "timed", { timeout: 50 }));
      expect(!timed.ok && timed.error).toBeInstanceOf(TimeoutError);
      const ac = new AbortController();
      const aborted = outcome(ch.publish("", "q", "aborted", { signal: ac.signal }));
      ac.abort();
      expect(((await aborted) as { error: unknown }).error).toBeInstanceOf(AbortError);
      await expect(ch.publish("", "q", "bad", { timeout: -1 })).rejects.toBeInstanceOf(RangeError);
      await new Promise((r) => setTimeout(r, 50));
      expect(publishes.count).toBe(1); // only the first went out
      await server.close();
      expect(((await first) as { error: unknown }).error).toBeInstanceOf(ConnectionClosedError);
    } finally {
      await conn.close();
    }
  });
});

describe("confirm.select", () => {
  test("each publish resolves once the broker has the message", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await ch.publish("", queue, "one");
    // Resolved means confirmed: the message is in the queue now, no polling needed.
    expect((await queueCounts(ch, queue)).messageCount).toBe(1);
    // With a signal that never fires, the same: and the signal is not sent as a property.
    await ch.publish("", queue, "two", { signal: new AbortController().signal, messageId: "2" });
    expect((await queueCounts(ch, queue)).messageCount).toBe(2);
    await ch.get(queue, { noAck: true });
    expect((await ch.get(queue, { noAck: true }))?.properties).toEqual({ messageId: "2" });
  });

  test("5,000 publishes in flight at once all resolve, and all are in the queue", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    const n = 5000;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => outcome(ch.publish("", queue, `m${i}`))));
    expect(results.filter((r) => r.ok).length).toBe(n);
    expect((await queueCounts(ch, queue)).messageCount).toBe(n);
    await ch.waitForConfirms(); // nothing left to wait for
  });

  test("a nack rejects that publish with NackError; the others resolve (x-max-length + reject-publish)", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", {
      exclusive: true,
      arguments: { "x-max-length": 2, "x-overflow": "reject-publish" },
    });
    await ch.confirmSelect();
    const results = await Promise.all(["a", "b", "c", "d"].map((b) => outcome(ch.publish("", queue, b))));
    expect(results.map((r) => r.ok)).toEqual([true, true, false, false]);
    for (const r of results.slice(2)) {
      const err = (r as { error: NackError }).error;
      expect(err).toBeInstanceOf(NackError);
      expect(err.recoverable).toBe(true);
    }
    expect((await queueCounts(ch, queue)).messageCount).toBe(2);
    expect(ch.closed).toBe(false);
  });

  test("a channel closed by the broker rejects the unconfirmed publishes with its reason", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await ch.publish("", queue, "fine");
    // RabbitMQ may close the channel before acking a publish made just before the failing one
    // (it acks in batches), so those two are made unconfirmed together: both reject.
    const before = ch.publish("", queue, "unconfirmed");
    const bad = ch.publish(uniqueName("missing-x"), "", "refused"); // 404 closes the channel
    const after = ch.publish("", queue, "too late");
    const [a, b, c] = await Promise.all([outcome(before), outcome(bad), outcome(after)]);
    expect((b as { error: unknown }).error).toBeInstanceOf(NotFoundError);
    // The earlier one either made it (acked) or was rejected with the same reason: never left pending.
    if (!a.ok) expect(a.error).toBe((b as { error: unknown }).error);
    expect((c as { error: unknown }).error).toBe((b as { error: unknown }).error);
  });

  test("a lost connection rejects every unconfirmed publish with a ConnectionClosedError, and waitForConfirms with it", async () => {
    const url = await getBrokerUrl();
    const proxy = await startProxy({ target: brokerAddress(url) });
    try {
      const conn = await connect({ url: proxy.url(url), heartbeat: 0 });
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      await ch.confirmSelect();
      const pending = Array.from({ length: 100 }, (_, i) => outcome(ch.publish("", queue, String(i))));
      const waiting = outcome(ch.waitForConfirms());
      proxy.resetAll(); // before the publishes have even left: none can be confirmed
      const results = await Promise.all(pending);
      for (const r of results) expect((r as { error: unknown }).error).toBeInstanceOf(ConnectionClosedError);
      expect((await waiting).ok).toBe(false);
      await conn.close();
    } finally {
      await proxy.close();
    }
  });

  test("close() waits for outstanding confirms first: nothing published before it is lost", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const q = uniqueName("confirm-close");
    await ch.queueDeclare(q);
    await ch.confirmSelect();
    const pubs = Array.from({ length: 500 }, (_, i) => ch.publish("", q, String(i)));
    await ch.close();
    expect((await Promise.all(pubs.map((p) => outcome(p)))).every((r) => r.ok)).toBe(true);
    const probe = await conn.openChannel();
    await untilReady(probe, q, 500);
    await probe.queueDelete(q);
  });

  test("confirm.select on a transactional channel is refused (406)", async () => {
    const ch = await (await open()).openChannel();
    await ch.txSelect();
    const r = await outcome(ch.confirmSelect());
    expect((r as { error: unknown }).error).toBeInstanceOf(PreconditionFailedError);
  });
});

describe("waits for confirms are bounded (a fake server that never confirms)", () => {
  test("waitForConfirms takes a timeout and a signal; a publish's signal ends its wait; the publishes still reject when the channel goes", async () => {
    const { server } = await neverConfirms();
    const conn = await connect({ url: server.url(), timeout: 5000 });
    try {
      const ch = await conn.openChannel();
      await ch.confirmSelect();
      const plain = outcome(ch.publish("", "q", "never confirmed"));
      const ac = new AbortController();
      const withSignal = outcome(ch.publish("", "q", "abandoned", { signal: ac.signal }));
      const timed = await outcome(ch.waitForConfirms({ timeout: 50 }));
      expect((timed as { error: unknown }).error).toBeInstanceOf(TimeoutError);
      const ac2 = new AbortController();
      const waiting = outcome(ch.waitForConfirms({ signal: ac2.signal }));
      ac2.abort();
      expect(((await waiting) as { error: unknown }).error).toBeInstanceOf(AbortError);
      ac.abort();
      expect(((await withSignal) as { error: unknown }).error).toBeInstanceOf(AbortError);
      await server.close(); // the connection goes: the publish nobody aborted rejects
      expect(((await plain) as { error: unknown }).error).toBeInstanceOf(ConnectionClosedError);
    } finally {
      await server.close();
      await conn.close();
    }
  });
});
