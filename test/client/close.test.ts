/**
 * Orderly close in both directions (spec 2.2.4 / 4.2.2 connection.close and close-ok), and
 * connection.update-secret (RabbitMQ extension). A close by the broker (an operator's
 * `rabbitmqctl close_connection`, reply code 320) reaches the "close" event and every pending or
 * later call as a ConnectionForcedError carrying the code and the operator's text; a close by
 * the client rejects what is pending and releases everything.
 *
 * connection.blocked / unblocked (a memory alarm) changes the broker for everyone, so it lives
 * in test/serial/blocked.test.ts.
 */
import { once } from "node:events";
import { randomUUID } from "node:crypto";
import { describe, expect, test } from "vitest";
import {
  ConnectionClosedError,
  ConnectionForcedError,
  TimeoutError,
  connect,
  createRpcClient,
  type AmqpError,
  type Message,
} from "../../src/index.js";
import { getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { connectionPids, forceCloseConnection } from "../helpers/force-close.js";
import { Connection as C, standardHandshake, startFakeServer } from "../helpers/fake-server.js";
import { eventually, outcome, useConnections } from "./util.js";
import { testNeeding } from "../helpers/capabilities.js";

const open = useConnections();

describe("closed by the broker", () => {
  testNeeding(
    "rabbitmqctl",
    "rabbitmqctl close_connection: ConnectionForcedError 320 with the text, on the close event, on pending calls and on later ones",
    async () => {
      const name = `warren-forced-${randomUUID()}`;
      const conn = await open({ connectionName: name });
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      // Pending when the close comes: an iterator waiting for a message, an RPC call waiting for a reply.
      const stream = ch.consume(queue);
      await stream.consumerTag;
      const waiting = outcome(stream.next());
      const rpc = await createRpcClient(await conn.openChannel(), { timeout: 60_000 });
      const call = outcome(rpc.call("", `nobody-${randomUUID()}`, "anyone?"));
      const closed = once(conn, "close") as Promise<[AmqpError | undefined]>;
      const chClosed = once(ch, "close") as Promise<[AmqpError | undefined]>;

      await forceCloseConnection(name, "maintenance ✓ window");

      const [err] = await closed;
      expect(err).toBeInstanceOf(ConnectionForcedError);
      const forced = err as ConnectionForcedError;
      expect(forced.replyCode).toBe(320);
      expect(forced.replyText).toContain("maintenance ✓ window");
      expect(forced.initiatedBy).toBe("server");
      expect(forced.recoverable).toBe(true);
      expect((await chClosed)[0]).toBe(forced);
      for (const r of [await waiting, await call]) {
        expect(r.ok).toBe(false);
        expect((r as { error: unknown }).error).toBe(forced);
      }
      expect(conn.closed).toBe(true);
      const later = await outcome(ch.queueDeclare("", { exclusive: true }));
      expect((later as { error: unknown }).error).toBeInstanceOf(ConnectionForcedError);
      expect(await outcome(conn.openChannel())).toMatchObject({ ok: false, error: forced });
    },
  );
});

describe("closed by the client", () => {
  testNeeding(
    "rabbitmqctl",
    "close() answers with close-ok from the broker, emits close without an error, rejects pending calls, and the broker forgets the connection",
    async () => {
      const name = `warren-close-${randomUUID()}`;
      const conn = await open({ connectionName: name });
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      const rpc = await createRpcClient(await conn.openChannel(), { timeout: 60_000 });
      const call = outcome(rpc.call("", `nobody-${randomUUID()}`, "anyone?"));
      const stream = ch.consume(queue);
      await stream.consumerTag;
      const waiting = stream.next();
      const closes: unknown[] = [];
      conn.on("close", (e) => closes.push(e));

      await Promise.all([conn.close(), conn.close()]); // concurrent closes: one close, both resolve
      await conn.close(); // and again: a no-op

      expect(closes).toEqual([undefined]);
      expect(conn.closed).toBe(true);
      // An iterator ends quietly on a close the user asked for; a call waiting for a reply cannot succeed.
      expect(await waiting).toEqual({ value: undefined, done: true });
      const r = await call;
      expect((r as { error: ConnectionClosedError }).error).toBeInstanceOf(ConnectionClosedError);
      expect((r as { error: ConnectionClosedError }).error.replyCode).toBe(200);
      const later = await outcome(ch.get(queue));
      expect((later as { error: ConnectionClosedError }).error).toMatchObject({
        replyCode: 200,
        initiatedBy: "client",
      });
      await eventually(
        async () => (await connectionPids(name)).length === 0,
        "the broker to drop the connection",
        40,
        100,
      );
    },
  );
});

describe("acks just before close()", () => {
  // Regression: connection.close was once written before the acks flush() holds, and the broker
  // discards every frame after connection.close, so those messages came back.
  test("an ack made right before conn.close() reaches the broker: nothing is redelivered", async () => {
    const conn = await connect({ url: await getBrokerUrl() });
    const ch = await conn.openChannel();
    const queue = uniqueName("ack-before-close");
    await ch.queueDeclare(queue, { durable: true });
    try {
      await ch.confirmSelect();
      await Promise.all(["a", "b", "c"].map((id) => ch.publish("", queue, id, { messageId: id })));
      const got: Message[] = [];
      await ch.consume(queue, (m) => void got.push(m));
      await eventually(() => got.length === 3, "three deliveries");
      for (const m of got) expect(m.ack()).toBeUndefined(); // in order: held, written at the next flush
      await conn.close(); // no ch.close() first
    } finally {
      const check = await connect({ url: await getBrokerUrl() });
      const c = await check.openChannel();
      const left = (await c.queueDeclare(queue, { passive: true })).messageCount;
      await c.queueDelete(queue);
      await check.close();
      expect(left).toBe(0);
    }
  });
});

describe("update-secret", () => {
  test("RabbitMQ accepts connection.update-secret and the connection carries on", async () => {
    const conn = await open();
    await conn.updateSecret("guest", "rotating the secret");
    const ch = await conn.openChannel();
    expect((await ch.queueDeclare("", { exclusive: true })).queue).toMatch(/^amq\.gen-/);
    expect(conn.closed).toBe(false);
  });

  test("an update-secret that gets no answer times out instead of waiting forever", async () => {
    let asked = false;
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      await c.expectMethod(C.classId, 70); // connection.update-secret; never answered
      asked = true;
    });
    const conn = await connect({ url: server.url(), timeout: 200 });
    try {
      const r = await outcome(conn.updateSecret("new", "test"));
      expect((r as { error: unknown }).error).toBeInstanceOf(TimeoutError);
      expect(asked).toBe(true);
    } finally {
      await server.close();
      await conn.close();
    }
  });
});
