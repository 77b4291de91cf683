/**
 * Closing a channel while the broker is still sending it deliveries. The broker keeps sending
 * until it reads our channel.close, so deliveries (method, header, body frames) cross it on
 * the wire. The spec (channel.close) has the closing peer discard every frame until
 * close-ok: the content frames of those deliveries must be dropped quietly, not taken for a
 * protocol violation that kills the whole connection.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { connect, type Connection } from "../../src/index.js";
import { getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { failOnUnhandledRejection, recordCloses } from "../helpers/leaks.js";
import { queueCounts, eventually } from "../client/util.js";

failOnUnhandledRejection();

let conn: Connection;
beforeAll(async () => {
  conn = await connect(await getBrokerUrl());
});
afterAll(async () => {
  await conn.close();
});

test("channel.close crossing a stream of deliveries: the channel closes, the connection lives, the messages go back", async () => {
  const closes = recordCloses(conn);
  const admin = await conn.openChannel();
  const queue = uniqueName("close-race");
  await admin.queueDeclare(queue, { autoDelete: false });
  await admin.confirmSelect();
  const N = 400;
  const body = randomBytes(2048);
  await Promise.all(Array.from({ length: N }, () => admin.publish("", queue, body)));

  // Several rounds: each consumer gets a burst in flight, then its channel is closed on the
  // first delivery, with the rest of the burst still on the wire.
  for (let round = 0; round < 5; round++) {
    const ch = await conn.openChannel();
    const chCloses = recordCloses(ch);
    await ch.prefetch(200);
    let first!: () => void;
    const got = new Promise<void>((r) => (first = r));
    await ch.consume(queue, () => first());
    await got;
    await ch.close();
    expect(chCloses).toEqual([undefined]);
  }
  expect(closes).toEqual([]);
  expect(conn.closed).toBe(false);
  // Nothing was acked: every message is back in the queue.
  await eventually(async () => (await queueCounts(admin, queue)).messageCount === N, `${N} messages back in ${queue}`);
  await admin.queueDelete(queue);
  await admin.close();
});
