/**
 * The queue class (spec 1.7.2.x): declare (server-named, exclusive, auto-delete, passive, with
 * arguments x-queue-type and x-message-ttl), bind/unbind, purge, delete with if-unused and
 * if-empty. Each verified by what the broker does afterwards, not only by the reply.
 */
import { describe, expect, test } from "vitest";
import { NotFoundError, PreconditionFailedError } from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { eventually, outcome, queueCounts, untilReady, useConnections } from "./util.js";

const open = useConnections();

describe("queue.declare", () => {
  test("server-named: the broker picks an amq.gen- name and reports counts", async () => {
    const ch = await (await open()).openChannel();
    const r = await ch.queueDeclare("", { exclusive: true });
    expect(r.queue).toMatch(/^amq\.gen-/);
    expect(r).toMatchObject({ messageCount: 0, consumerCount: 0 });
    await ch.publish("", r.queue, "one");
    await untilReady(ch, r.queue, 1);
    await ch.consume(r.queue, () => undefined);
    expect(await ch.queueDeclare(r.queue, { passive: true })).toEqual({
      queue: r.queue,
      messageCount: 0,
      consumerCount: 1,
    });
  });

  test("exclusive: gone when its connection closes", async () => {
    const owner = await open();
    const ch = await owner.openChannel();
    const q = uniqueName("excl");
    await ch.queueDeclare(q, { exclusive: true });
    await owner.close();
    const other = await (await open()).openChannel();
    const r = await outcome(other.queueDeclare(q, { passive: true }));
    expect((r as { error: unknown }).error).toBeInstanceOf(NotFoundError);
  });

  test("auto-delete: gone when its last consumer is cancelled", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const q = uniqueName("autodel");
    await ch.queueDeclare(q, { autoDelete: true });
    const c = await ch.consume(q, () => undefined);
    await c.cancel();
    await eventually(async () => {
      const probe = await conn.openChannel();
      const r = await outcome(probe.queueDeclare(q, { passive: true }));
      return !r.ok && r.error instanceof NotFoundError;
    }, "the auto-delete queue to go");
  });

  test("x-queue-type quorum and classic: declared as asked (a redeclare with the other type is inequivalent)", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const quorum = uniqueName("quorum");
    await ch.queueDeclare(quorum, { durable: true, arguments: { "x-queue-type": "quorum" } });
    try {
      await ch.publish("", quorum, "q");
      await untilReady(ch, quorum, 1);
      const m = await ch.get(quorum, { noAck: true });
      expect(m?.body.toString()).toBe("q");
      const probe = await conn.openChannel();
      const r = await outcome(probe.queueDeclare(quorum, { durable: true, arguments: { "x-queue-type": "classic" } }));
      expect((r as { error: PreconditionFailedError }).error).toBeInstanceOf(PreconditionFailedError);
      expect((r as { error: PreconditionFailedError }).error.replyText).toMatch(/x-queue-type/);
    } finally {
      await ch.queueDelete(quorum);
    }
    const classic = uniqueName("classic");
    await ch.queueDeclare(classic, { exclusive: true, arguments: { "x-queue-type": "classic" } });
    await ch.queueDeclare(classic, { exclusive: true, arguments: { "x-queue-type": "classic" } });
  });

  test("x-message-ttl: messages expire from the queue", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true, arguments: { "x-message-ttl": 50 } });
    await ch.confirmSelect();
    await ch.publish("", queue, "short-lived");
    await eventually(async () => (await queueCounts(ch, queue)).messageCount === 0, "the message to expire");
    expect(await ch.get(queue)).toBeNull();
  });
});

describe("queue.bind / queue.unbind", () => {
  test("a binding routes, its removal stops routing", async () => {
    const ch = await (await open()).openChannel();
    const x = uniqueName("qb");
    await ch.exchangeDeclare(x, "direct"); // not auto-delete: it would go with its last binding
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    await ch.queueBind(queue, x, "green", { note: "bind arguments are accepted" });
    await ch.publish(x, "green", "1");
    await ch.queueUnbind(queue, x, "green", { note: "bind arguments are accepted" });
    await ch.publish(x, "green", "2");
    await ch.waitForConfirms();
    expect((await ch.get(queue, { noAck: true }))?.body.toString()).toBe("1");
    expect(await ch.get(queue, { noAck: true })).toBeNull();
    await ch.exchangeDelete(x);
  });
});

describe("queue.purge / queue.delete", () => {
  test("purge removes ready messages and says how many", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.confirmSelect();
    for (let i = 0; i < 5; i++) await ch.publish("", queue, String(i));
    await untilReady(ch, queue, 5);
    expect(await ch.queuePurge(queue)).toEqual({ messageCount: 5 });
    expect((await queueCounts(ch, queue)).messageCount).toBe(0);
  });

  test("delete says how many messages went with it; if-unused and if-empty refuse with 406", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const q = uniqueName("del");
    await ch.queueDeclare(q);
    await ch.confirmSelect();
    await ch.publish("", q, "keep");
    await ch.publish("", q, "keep");
    await untilReady(ch, q, 2);

    const notEmpty = await outcome(ch.queueDelete(q, { ifEmpty: true }));
    expect((notEmpty as { error: PreconditionFailedError }).error).toBeInstanceOf(PreconditionFailedError);
    expect((notEmpty as { error: PreconditionFailedError }).error.replyText).toMatch(/not empty/);

    const ch2 = await conn.openChannel();
    await ch2.consume(q, () => undefined, { noAck: false });
    const ch3 = await conn.openChannel();
    const inUse = await outcome(ch3.queueDelete(q, { ifUnused: true }));
    expect((inUse as { error: PreconditionFailedError }).error).toBeInstanceOf(PreconditionFailedError);
    expect((inUse as { error: PreconditionFailedError }).error.replyText).toMatch(/in use/);

    await ch2.close(); // the two unacked deliveries go back to the queue
    const ch4 = await conn.openChannel();
    await untilReady(ch4, q, 2);
    expect(await ch4.queueDelete(q)).toEqual({ messageCount: 2 });
    const gone = await outcome(ch4.queueDeclare(q, { passive: true }));
    expect((gone as { error: unknown }).error).toBeInstanceOf(NotFoundError);
  });
});
