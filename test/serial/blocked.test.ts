/**
 * connection.blocked / connection.unblocked (RabbitMQ extension, "Blocked Connection
 * Notifications"), through a real memory alarm: `rabbitmqctl set_vm_memory_high_watermark`
 * set near zero raises it, 0.4 clears it. RabbitMQ tells a connection it is blocked when it next
 * publishes during the alarm, and then stops reading from it.
 *
 * Serial project: the alarm blocks every publisher on the broker. It is kept short and always
 * cleared in `finally`.
 */
import { once } from "node:events";
import { expect, test } from "vitest";
import type { Connection } from "../../src/index.js";
import { eventually, queueCounts, useConnections } from "../client/util.js";
import { rabbitmqctl, uniqueName } from "../helpers/broker.js";

const open = useConnections();

/** Publish probes until the broker says "blocked" (the alarm takes effect within a memory-monitor tick). */
async function untilBlocked(conn: Connection, probe: () => void): Promise<string> {
  const blocked = once(conn, "blocked") as Promise<[string]>;
  let reason: string | undefined;
  void blocked.then(([r]) => (reason = r));
  await eventually(
    async () => {
      if (reason !== undefined) return true;
      probe();
      await Promise.race([blocked, new Promise((r) => setTimeout(r, 100))]);
      return reason !== undefined;
    },
    "connection.blocked after the memory alarm",
    100,
    0,
  );
  return reason!;
}

test("a memory alarm blocks the connection: 'blocked' with the reason, publishes wait; once cleared 'unblocked' fires, they resume and nothing is lost", async () => {
  const conn = await open();
  const confirmCh = await conn.openChannel();
  await confirmCh.confirmSelect();
  const plainCh = await conn.openChannel();
  const q = uniqueName("blocked");
  await confirmCh.queueDeclare(q, { exclusive: true });
  const checker = await conn.openChannel();
  const states: string[] = [];
  conn.on("state", (state, previous) => states.push(`${previous}->${state}`));

  let probes = 0;
  const probePromises: Promise<void>[] = [];
  const settled = { confirmed: 0, plain: 0 };
  const waiting: Promise<void>[] = [];
  let unblocked: Promise<unknown> | undefined;
  try {
    await rabbitmqctl(["set_vm_memory_high_watermark", "0.0000001"]);
    const reason = await untilBlocked(conn, () => {
      probes++;
      probePromises.push(confirmCh.publish("", q, `probe-${probes}`));
    });
    expect(reason).toMatch(/memory/);
    expect(conn.blocked).toBe(true);
    expect(conn.state).toBe("blocked");
    expect(conn.stats().blocked).toMatchObject({ count: 1, now: true });
    unblocked = once(conn, "unblocked");

    // While blocked: confirmed publishes get no confirm, and plain ones wait in publish() itself.
    for (let i = 0; i < 10; i++) {
      waiting.push(confirmCh.publish("", q, `confirmed-${i}`).then(() => void settled.confirmed++));
      waiting.push(plainCh.publish("", q, `plain-${i}`).then(() => void settled.plain++));
    }
    // A full round trip through rabbitmqctl while blocked: still nothing has gone through.
    await rabbitmqctl(["list_connections", "state", "--quiet", "--no-table-headers"]);
    expect(settled).toEqual({ confirmed: 0, plain: 0 });
  } finally {
    await rabbitmqctl(["set_vm_memory_high_watermark", "0.4"]);
  }
  await unblocked;
  expect(conn.blocked).toBe(false);
  expect(states).toEqual(["open->blocked", "blocked->open"]);
  const blocked = conn.stats().blocked;
  expect(blocked).toMatchObject({ count: 1, now: false });
  expect(blocked.totalMs).toBeGreaterThan(0);
  await Promise.all([...waiting, ...probePromises]);
  expect(settled).toEqual({ confirmed: 10, plain: 10 });
  // Nothing lost: every probe and every publish made while blocked is in the queue.
  await eventually(
    async () => (await queueCounts(checker, q)).messageCount === probes + 20 || undefined,
    `${probes + 20} messages in the queue`,
  );
});
