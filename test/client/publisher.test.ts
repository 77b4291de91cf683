/**
 * The publisher that heals (conn.createPublisher), against the real broker, every id counted on
 * both sides: a burst with one publish to a missing exchange in the middle (404 closes the
 * channel), with and without `republish`; a loop of awaited publishes that carries on past the
 * bad one; the next publishes in order on the fresh channel, in confirm mode.
 */
import { afterEach, describe, expect, test } from "vitest";
import {
  ConnectionClosedError,
  NotFoundError,
  PublishInterruptedError,
  PublishRefusedError,
  type Channel,
  type Publisher,
} from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import { brokerAtLeast, eventually, outcome, queueCounts, useConnections } from "./util.js";

const open = useConnections();
const publishers: Publisher[] = [];
afterEach(async () => {
  for (const p of publishers.splice(0)) await p.close().catch(() => undefined);
});

const N = 200;
const BAD = 100;

/** Every message in the queue, by id, in the order the queue holds them. */
async function drain(ch: Channel, queue: string): Promise<number[]> {
  const ids: number[] = [];
  for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
    ids.push(Number(m.properties.messageId));
  return ids;
}

async function setup(options: { republish?: boolean } = {}) {
  const conn = await open();
  const ch = await conn.openChannel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  const publisher = await conn.createPublisher(options);
  publishers.push(publisher);
  const healed: unknown[] = [];
  publisher.on("healed", (info) => healed.push(info));
  return { conn, ch, queue, publisher, healed, missing: uniqueName("no-such-exchange") };
}

/** N publishes made at once, #BAD to a missing exchange: each one's outcome. */
function burst(publisher: Publisher, queue: string, missing: string) {
  return Promise.all(
    Array.from({ length: N }, (_, i) =>
      outcome(
        i === BAD
          ? publisher.publish(missing, "key", "bad", { messageId: String(i) })
          : publisher.publish("", queue, String(i), { messageId: String(i) }),
      ),
    ),
  );
}

function refused(r: { ok: boolean; error?: unknown }, missing: string): void {
  expect(r.ok).toBe(false);
  const e = r.error as PublishRefusedError;
  expect(e).toBeInstanceOf(PublishRefusedError);
  expect({ exchange: e.exchange, routingKey: e.routingKey, replyCode: e.replyCode }).toEqual({
    exchange: missing,
    routingKey: "key",
    replyCode: 404,
  });
  expect(e.cause).toBeInstanceOf(NotFoundError);
}

describe("createPublisher()", () => {
  test("a burst around a 404: that publish refused, the unconfirmed rest interrupted, none lost or invented, and the next publish goes out on a fresh channel", async () => {
    const { ch, queue, publisher, healed, missing } = await setup();
    const first = publisher.channel;
    const results = await burst(publisher, queue, missing);
    refused(results[BAD]!, missing);
    const confirmed = new Set<number>();
    const interrupted = new Set<number>();
    results.forEach((r, i) => {
      if (i === BAD) return;
      if (r.ok) confirmed.add(i);
      else {
        expect(r.error).toBeInstanceOf(PublishInterruptedError);
        interrupted.add(i);
      }
    });
    // The broker drops what follows the bad publish on its channel: none of those was confirmed.
    for (let i = BAD + 1; i < N; i++) expect(interrupted.has(i)).toBe(true);
    expect(healed).toEqual([
      { error: expect.any(NotFoundError), refused: 1, interrupted: interrupted.size, republished: 0 },
    ]);

    await publisher.publish("", queue, "after", { messageId: String(N) });
    expect(publisher.channel).not.toBe(first);
    const ids = await drain(ch, queue);
    expect(new Set(ids).size).toBe(ids.length); // no duplicate
    for (const id of confirmed) expect(ids).toContain(id); // no loss of a confirmed publish
    for (const id of ids) expect(id === N || confirmed.has(id) || interrupted.has(id)).toBe(true); // nothing never sent
    expect(ids).not.toContain(BAD);
    expect(ids.at(-1)).toBe(N);
  });

  test("with republish: every publish but the bad one is confirmed, and the queue holds every id, in first-seen order", async () => {
    const { ch, queue, publisher, healed, missing } = await setup({ republish: true });
    const results = await burst(publisher, queue, missing);
    refused(results[BAD]!, missing);
    results.forEach((r, i) => i === BAD || expect(r).toEqual({ ok: true, value: undefined }));
    expect(healed).toHaveLength(1);
    expect(healed[0]).toMatchObject({ refused: 1, interrupted: 0 });
    await eventually(async () => (await queueCounts(ch, queue)).messageCount >= N - 1, `${N - 1} messages`);
    const ids = await drain(ch, queue);
    const firstSeen = [...new Set(ids)];
    const expected = Array.from({ length: N }, (_, i) => i).filter((i) => i !== BAD);
    expect(firstSeen).toEqual(expected);
    // Duplicates only of those sent again (interrupted, and perhaps already queued).
    expect(ids.length - firstSeen.length).toBeLessThanOrEqual((healed[0] as { republished: number }).republished);
  });

  test("a loop of awaited publishes carries on past the bad one: each other id arrives exactly once, in order", async () => {
    const { ch, queue, publisher, missing } = await setup();
    const errors: unknown[] = [];
    for (let i = 0; i < 50; i++) {
      try {
        await publisher.publish(i === 25 ? missing : "", i === 25 ? "key" : queue, String(i), { messageId: String(i) });
      } catch (e) {
        errors.push(e);
      }
    }
    expect(errors).toHaveLength(1);
    refused({ ok: false, error: errors[0] }, missing);
    expect(await drain(ch, queue)).toEqual(Array.from({ length: 50 }, (_, i) => i).filter((i) => i !== 25));
  });

  test("a message over the broker's max_message_size (406) is the one refused, found by its size among those in flight", async () => {
    const { conn, ch, queue, publisher } = await setup({ republish: true });
    // The default limit: 16 MiB from RabbitMQ 4.0, 128 MiB before.
    const size = (brokerAtLeast(conn, 4, 0) ? 16 : 128) * 1024 * 1024 + 1;
    const results = await Promise.all([
      outcome(publisher.publish("", queue, "before", { messageId: "before" })),
      outcome(publisher.publish("", queue, Buffer.alloc(size), { messageId: "big" })),
      outcome(publisher.publish("", queue, "after", { messageId: "after" })),
    ]);
    expect(results[0]).toEqual({ ok: true, value: undefined });
    expect(results[2]).toEqual({ ok: true, value: undefined });
    const e = (results[1] as { error: PublishRefusedError }).error;
    expect(e).toBeInstanceOf(PublishRefusedError);
    expect(e.replyCode).toBe(406);
    const ids: string[] = [];
    for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
      ids.push(m.properties.messageId ?? "");
    expect(ids.filter((id) => id === "before").length).toBeGreaterThanOrEqual(1); // twice if it was queued, then sent again
    expect(ids.at(-1)).toBe("after");
    expect(ids).not.toContain("big");
  }, 60_000);

  test("close() waits for what is in flight, then later publishes reject", async () => {
    const { ch, queue, publisher } = await setup();
    const pending = Array.from({ length: 20 }, (_, i) =>
      publisher.publish("", queue, String(i), { messageId: String(i) }),
    );
    await publisher.close();
    await Promise.all(pending);
    expect((await queueCounts(ch, queue)).messageCount).toBe(20);
    expect((await outcome(publisher.publish("", queue, "late"))).ok).toBe(false);
  });

  test("once its connection is closed, a publish rejects with the connection's close error, and so does every later one", async () => {
    const conn = await open();
    const publisher = await conn.createPublisher();
    await conn.close();
    for (let i = 0; i < 2; i++) {
      const r = await outcome(publisher.publish("", "q", "x"));
      expect(!r.ok && r.error instanceof ConnectionClosedError).toBe(true);
    }
  });
});
