/**
 * The exchange class (spec 1.7.2 and RabbitMQ's exchange-to-exchange bindings extension):
 * declare of every built-in type with its options, passive declare, delete (if-unused),
 * bind/unbind between exchanges -- each verified by where a message goes, not just by the reply.
 */
import { describe, expect, test } from "vitest";
import { AccessRefusedError, PreconditionFailedError, type Channel, type Message } from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { eventually, outcome, useConnections } from "./util.js";

const open = useConnections();

/** Publishes `body` to `exchange` with `key` and reports whether it reached `queue` (polled with basic.get). */
async function routes(
  ch: Channel,
  exchange: string,
  key: string,
  queue: string,
  headers?: Record<string, string>,
): Promise<boolean> {
  const body = `probe-${Math.random()}`;
  await ch.confirmSelect().catch(() => undefined);
  await ch.publish(exchange, key, body, headers ? { headers } : {});
  await ch.waitForConfirms(); // the broker has routed it (or dropped it) once it confirms
  const m = await ch.get(queue, { noAck: true });
  if (m !== null) expect(m.body.toString()).toBe(body);
  return m !== null;
}

describe("exchange.declare", () => {
  test("every built-in type, each routing as its type says", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const direct = uniqueName("x-direct");
    const fanout = uniqueName("x-fanout");
    const topic = uniqueName("x-topic");
    const headers = uniqueName("x-headers");
    for (const [name, type] of [
      [direct, "direct"],
      [fanout, "fanout"],
      [topic, "topic"],
      [headers, "headers"],
    ] as const) {
      await ch.exchangeDeclare(name, type, { autoDelete: true });
    }
    await ch.queueBind(queue, direct, "red");
    await ch.queueBind(queue, fanout, "ignored");
    await ch.queueBind(queue, topic, "*.error.#");
    await ch.queueBind(queue, headers, "", { "x-match": "all", level: "high" });
    expect(await routes(ch, direct, "red", queue)).toBe(true);
    expect(await routes(ch, direct, "blue", queue)).toBe(false);
    expect(await routes(ch, fanout, "anything", queue)).toBe(true);
    expect(await routes(ch, topic, "app.error.disk.full", queue)).toBe(true);
    expect(await routes(ch, topic, "app.info", queue)).toBe(false);
    expect(await routes(ch, headers, "", queue, { level: "high" })).toBe(true);
    expect(await routes(ch, headers, "", queue, { level: "low" })).toBe(false);
  });

  test("passive declare of an existing exchange succeeds whatever type is given; durable and internal are kept", async () => {
    const ch = await (await open()).openChannel();
    const x = uniqueName("x-durable");
    await ch.exchangeDeclare(x, "fanout", { durable: true, autoDelete: false });
    await ch.exchangeDeclare(x, "fanout", { durable: true }); // an equivalent redeclare is fine
    await ch.exchangeDeclare(x, "direct", { passive: true });
    // Redeclaring it non-durable is inequivalent: proof the broker recorded durable.
    const ch2 = await ch.connection.openChannel();
    const r = await outcome(ch2.exchangeDeclare(x, "fanout", { durable: false }));
    expect((r as { error: unknown }).error).toBeInstanceOf(PreconditionFailedError);
    await ch.exchangeDelete(x);
  });

  test("an internal exchange takes no publishes from clients (403), but routes what other exchanges send it", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const internal = uniqueName("x-internal");
    const front = uniqueName("x-front");
    await ch.exchangeDeclare(internal, "fanout", { internal: true, autoDelete: true });
    await ch.exchangeDeclare(front, "fanout", { autoDelete: true });
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, internal);
    await ch.exchangeBind(internal, front);
    expect(await routes(ch, front, "", queue)).toBe(true);
    const direct = await conn.openChannel();
    await direct.confirmSelect();
    const r = await outcome(direct.publish(internal, "", "no"));
    expect((r as { error: unknown }).error).toBeInstanceOf(AccessRefusedError);
  });
});

describe("exchange.delete", () => {
  test("deletes; if-unused refuses an exchange that still has bindings (406)", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const x = uniqueName("x-del");
    await ch.exchangeDeclare(x, "direct");
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, x, "k");
    const r = await outcome(ch.exchangeDelete(x, { ifUnused: true }));
    expect((r as { error: unknown }).error).toBeInstanceOf(PreconditionFailedError);
    const ch2 = await conn.openChannel();
    await ch2.exchangeDelete(x);
    const gone = await outcome(ch2.exchangeDeclare(x, "direct", { passive: true }));
    expect((gone as { error: { replyCode: number } }).error.replyCode).toBe(404);
  });
});

describe("exchange.bind / exchange.unbind", () => {
  test("exchange-to-exchange: a message published to the source reaches a queue bound to the destination; unbind stops it", async () => {
    const ch = await (await open()).openChannel();
    const source = uniqueName("x-src");
    const destination = uniqueName("x-dst");
    // Not auto-delete: RabbitMQ deletes an auto-delete exchange when its last binding goes, and unbind is tested here.
    await ch.exchangeDeclare(source, "topic");
    await ch.exchangeDeclare(destination, "fanout");
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, destination);
    expect(await routes(ch, source, "orders.eu", queue)).toBe(false);
    await ch.exchangeBind(destination, source, "orders.*");
    expect(await routes(ch, source, "orders.eu", queue)).toBe(true);
    expect(await routes(ch, source, "billing.eu", queue)).toBe(false);
    await ch.exchangeUnbind(destination, source, "orders.*");
    expect(await routes(ch, source, "orders.eu", queue)).toBe(false);
    await ch.exchangeDelete(source);
    await ch.exchangeDelete(destination);
  });

  test("a message routed through an exchange-to-exchange binding keeps its original exchange and routing key", async () => {
    const ch = await (await open()).openChannel();
    const source = uniqueName("x-src2");
    const destination = uniqueName("x-dst2");
    await ch.exchangeDeclare(source, "direct", { autoDelete: true });
    await ch.exchangeDeclare(destination, "direct", { autoDelete: true });
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.queueBind(queue, destination, "k");
    await ch.exchangeBind(destination, source, "k");
    await ch.publish(source, "k", "via");
    const m: Message = await eventually(
      () => ch.get(queue, { noAck: true }).then((x) => x ?? undefined),
      "the routed message",
    );
    expect(m.fields.exchange).toBe(source);
    expect(m.fields.routingKey).toBe("k");
  });
});
