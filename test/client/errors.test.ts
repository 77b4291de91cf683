/**
 * Every channel-level refusal the broker makes on request, as the typed error a user would
 * catch: 404 NOT_FOUND (passive declare of a missing queue or exchange, publish to a missing
 * exchange), 406 PRECONDITION_FAILED (inequivalent redeclare, unknown delivery tag), 403
 * ACCESS_REFUSED (a reserved "amq." name), 405 RESOURCE_LOCKED (another connection's exclusive
 * queue). The broker closes the channel (spec 1.5.2 "channel.close"); the failing call AND every
 * call queued behind it reject with the same ChannelClosedError subclass carrying reply code,
 * reply text, class/method and whether a retry could help; the connection and its other
 * channels carry on. Connection-level refusals (403 login, 530 vhost, 320 forced) are in
 * connection.test.ts and close.test.ts.
 */
import { once } from "node:events";
import { describe, expect, test } from "vitest";
import {
  AccessRefusedError,
  AmqpError,
  ChannelClosedError,
  ConnectionClosedError,
  NotImplementedError,
  NotFoundError,
  PreconditionFailedError,
  ResourceLockedError,
  type Channel,
  type Connection,
} from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { outcome, useConnections } from "./util.js";

const open = useConnections();

/**
 * Runs `fail` with three more calls queued behind it (made synchronously, before any reply),
 * and checks that all four reject with the same typed error; then that the connection and a
 * sibling channel still work and a new channel can be opened.
 */
async function refusal<E extends ChannelClosedError>(
  conn: Connection,
  ch: Channel,
  fail: () => Promise<unknown>,
  type: new (...a: never[]) => E,
): Promise<E> {
  const sibling = await conn.openChannel();
  const closed = once(ch, "close") as Promise<[unknown]>;
  const results = await Promise.all([
    outcome(fail()),
    outcome(ch.queueDeclare("", { exclusive: true })),
    outcome(ch.exchangeDeclare(uniqueName("queued"), "fanout", { autoDelete: true })),
    outcome(ch.get("amq.rabbitmq.reply-to")),
  ]);
  const err = (results[0] as { error: E }).error;
  expect(err).toBeInstanceOf(type);
  expect(err).toBeInstanceOf(ChannelClosedError);
  expect(err).toBeInstanceOf(AmqpError);
  expect(err.initiatedBy).toBe("server");
  for (const r of results) expect(r).toEqual({ ok: false, error: err });
  expect((await closed)[0]).toBe(err);
  expect(ch.closed).toBe(true);
  // The connection and its other channels carry on.
  expect(conn.closed).toBe(false);
  expect((await sibling.queueDeclare("", { exclusive: true })).queue).toMatch(/^amq\.gen-/);
  const fresh = await conn.openChannel();
  await fresh.queueDeclare("", { exclusive: true });
  // Later calls on the dead channel fail with the same reason, through their promise.
  expect(await outcome(ch.queueDeclare("", { exclusive: true }))).toEqual({ ok: false, error: err });
  return err;
}

describe("404 NOT_FOUND", () => {
  test("passive declare of a missing queue: NotFoundError naming queue.declare (class 50, method 10)", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const q = uniqueName("missing-q");
    const err = await refusal(conn, ch, () => ch.queueDeclare(q, { passive: true }), NotFoundError);
    expect(err.replyCode).toBe(404);
    expect(err.replyText).toContain(q);
    expect([err.classId, err.methodId, err.method]).toEqual([50, 10, "queue.declare"]);
    expect(err.recoverable).toBe(false);
    expect(err.message).toMatch(/404 NOT_FOUND/);
  });

  test("passive declare of a missing exchange: NotFoundError naming exchange.declare (40, 10)", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const x = uniqueName("missing-x");
    const err = await refusal(conn, ch, () => ch.exchangeDeclare(x, "direct", { passive: true }), NotFoundError);
    expect(err.replyText).toContain(x);
    expect([err.classId, err.methodId, err.method]).toEqual([40, 10, "exchange.declare"]);
  });

  test("binding to a missing exchange: NotFoundError naming queue.bind", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const err = await refusal(conn, ch, () => ch.queueBind(queue, uniqueName("missing-x")), NotFoundError);
    expect(err.method).toBe("queue.bind");
  });

  test("publish to a missing exchange in confirm mode: the publish itself rejects with NotFoundError naming basic.publish", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    const r = await outcome(ch.publish(uniqueName("missing-x"), "", "lost"));
    const err = (r as { error: NotFoundError }).error;
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.method).toBe("basic.publish");
    expect(ch.closed).toBe(true);
    expect(conn.closed).toBe(false);
  });
});

describe("406 PRECONDITION_FAILED", () => {
  test("redeclaring a queue with other properties: PreconditionFailedError naming queue.declare", async () => {
    const conn = await open();
    const setup = await conn.openChannel();
    const q = uniqueName("inequivalent");
    await setup.queueDeclare(q, { autoDelete: true, arguments: { "x-message-ttl": 1000 } });
    const ch = await conn.openChannel();
    const err = await refusal(
      conn,
      ch,
      () => ch.queueDeclare(q, { autoDelete: true, arguments: { "x-message-ttl": 2000 } }),
      PreconditionFailedError,
    );
    expect(err.replyCode).toBe(406);
    expect(err.replyText).toMatch(/inequivalent arg 'x-message-ttl'/);
    expect(err.method).toBe("queue.declare");
    await setup.queueDelete(q);
  });

  test("redeclaring an exchange with another type: PreconditionFailedError naming exchange.declare", async () => {
    const conn = await open();
    const setup = await conn.openChannel();
    const x = uniqueName("inequivalent-x");
    await setup.exchangeDeclare(x, "fanout", { autoDelete: false });
    const ch = await conn.openChannel();
    const err = await refusal(conn, ch, () => ch.exchangeDeclare(x, "topic"), PreconditionFailedError);
    expect(err.replyText).toMatch(/inequivalent arg 'type'/);
    expect(err.method).toBe("exchange.declare");
    await setup.exchangeDelete(x);
  });

  test("acking an unknown delivery tag: the channel closes with PreconditionFailedError naming basic.ack; ack itself returned nothing", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const closed = once(ch, "close") as Promise<[unknown]>;
    expect(ch.ack(12345, { multiple: true })).toBeUndefined(); // sent; the broker refuses it asynchronously
    const [err] = await closed;
    expect(err).toBeInstanceOf(PreconditionFailedError);
    expect((err as PreconditionFailedError).replyText).toMatch(/unknown delivery tag 12345/);
    expect((err as PreconditionFailedError).method).toBe("basic.ack");
    expect(ch.ack(1)).toBe(err); // acks on the closed channel return its error, never throw
  });
});

describe("403 ACCESS_REFUSED", () => {
  test("declaring an exchange with the reserved amq. prefix: AccessRefusedError naming exchange.declare", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const err = await refusal(
      conn,
      ch,
      () => ch.exchangeDeclare(`amq.${uniqueName("reserved")}`, "direct"),
      AccessRefusedError,
    );
    expect(err.replyCode).toBe(403);
    expect(err.replyText).toMatch(/amq\./);
    expect(err.method).toBe("exchange.declare");
    expect(err.recoverable).toBe(false);
  });
});

describe("405 RESOURCE_LOCKED", () => {
  test("using another connection's exclusive queue: ResourceLockedError, which a retry could get past", async () => {
    const owner = await (await open()).openChannel();
    const q = uniqueName("exclusive");
    await owner.queueDeclare(q, { exclusive: true });
    const conn = await open();
    const ch = await conn.openChannel();
    const err = await refusal(conn, ch, () => ch.queueDeclare(q, { exclusive: true }), ResourceLockedError);
    expect(err.replyCode).toBe(405);
    expect(err.replyText).toContain(q);
    expect(err.method).toBe("queue.declare");
    // The lock goes with the owner: trying again later can succeed.
    expect(err.recoverable).toBe(true);
    // Consuming from it is refused the same way.
    const ch2 = await conn.openChannel();
    const r = await outcome(ch2.consume(q, () => undefined));
    expect((r as { error: unknown }).error).toBeInstanceOf(ResourceLockedError);
    expect((r as { error: ResourceLockedError }).error.method).toBe("basic.consume");
  });
});

describe("connection-level refusal from a channel method", () => {
  test("540 NOT_IMPLEMENTED (basic.qos with a prefetch size): NotImplementedError closes the whole connection; every channel and call gets it", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const other = await conn.openChannel();
    const closed = once(conn, "close") as Promise<[unknown]>;
    const r = await outcome(ch.prefetch(1, { size: 1000 }));
    const err = (r as { error: NotImplementedError }).error;
    expect(err).toBeInstanceOf(NotImplementedError);
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.replyCode).toBe(540);
    expect(err.method).toBe("basic.qos");
    expect(err.replyText).toMatch(/prefetch_size/);
    expect((await closed)[0]).toBe(err);
    expect(await outcome(other.queueDeclare("", { exclusive: true }))).toEqual({ ok: false, error: err });
    expect(conn.closed).toBe(true);
  });
});
