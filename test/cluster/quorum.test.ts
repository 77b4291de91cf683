/**
 * Quorum queue features on the cluster: single active consumer failing over when the active
 * consumer's node dies, consumer priorities, and a memory alarm on one node blocking publishers
 * connected to another (RabbitMQ's resource alarms are cluster-wide). What a test changes it puts
 * back in a `finally`.
 */
import { describe, expect, test } from "vitest";
import type { Message } from "../../src/index.js";
import { eventually } from "../client/util.js";
import { uniqueName } from "../helpers/broker.js";
import { failOnUnhandledRejection } from "../helpers/leaks.js";
import { ctl, kill, restoreCluster, useCluster, type Node } from "./cluster.js";

failOnUnhandledRejection();
const { on, cleanup } = useCluster();

async function queue(via: Node, args: Record<string, unknown>): Promise<string> {
  const name = uniqueName("cluster-q");
  await (
    await (await on(via)).openChannel()
  ).queueDeclare(name, {
    durable: true,
    queueType: "quorum",
    arguments: { "x-consumer-disconnected-timeout": 1000, ...args } as never,
  });
  cleanup(async () => {
    await restoreCluster();
    await (await (await on("c1")).openChannel()).queueDelete(name);
  });
  return name;
}

test("single active consumer: when the active consumer's node dies, the standby takes over and gets every message the active one did not ack", async () => {
  const q = await queue("c2", { "x-single-active-consumer": true, "x-queue-leader-locator": "client-local" });
  const pub = await (await on("c2")).openChannel();
  await pub.confirmSelect();
  const N = 40;
  const a: string[] = [];
  const b: string[] = [];
  const chA = await (await on("c3")).openChannel();
  await chA.prefetch(5);
  await chA.consume(q, (m: Message) => {
    a.push(m.properties.messageId!);
    if (a.length <= 10) chA.ack(m); // acks ten, then holds five unacked
  });
  const chB = await (await on("c1")).openChannel();
  await chB.prefetch(5);
  await chB.consume(q, (m: Message) => {
    b.push(m.properties.messageId!);
    chB.ack(m);
  });
  await Promise.all(Array.from({ length: N }, (_, i) => pub.publish("", q, `m${i}`, { messageId: `m${i}` })));
  try {
    await eventually(() => a.length === 15, "the active consumer to hold its window", 400, 25);
    expect(b).toEqual([]); // the standby gets nothing while the active one lives
    await kill("c3");
    await eventually(
      () => b.length === N - 10,
      `the standby to get the ${N - 10} the active one did not ack`,
      1200,
      50,
    );
    expect(new Set([...a.slice(0, 10), ...b])).toEqual(new Set(Array.from({ length: N }, (_, i) => `m${i}`)));
  } finally {
    await restoreCluster();
  }
});

test("consumer priorities: the x-priority 10 consumer is served first while it has room; the other gets the rest", async () => {
  const q = await queue("c1", {});
  const ch = await (await on("c1")).openChannel();
  const high: string[] = [];
  const low: string[] = [];
  await ch.prefetch(5);
  await ch.consume(q, (m: Message) => void high.push(m.properties.messageId!), { arguments: { "x-priority": 10 } }); // never acks
  await ch.prefetch(100);
  await ch.consume(q, (m: Message) => void low.push(m.properties.messageId!), { arguments: { "x-priority": 0 } });
  await ch.confirmSelect();
  for (let i = 0; i < 20; i++) await ch.publish("", q, `m${i}`, { messageId: `m${i}` });
  await eventually(() => high.length + low.length === 20, "all 20 delivered");
  expect(high).toEqual(["m0", "m1", "m2", "m3", "m4"]);
  expect(low).toHaveLength(15);
});

describe("a blocked cluster", () => {
  test("a memory alarm on c2 blocks a publisher connected to c1; it waits, resumes when the alarm clears, and nothing is lost", async () => {
    const q = await queue("c1", {});
    const conn = await on("c1");
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    let reason: string | undefined;
    conn.once("blocked", (r) => (reason = r));
    const unblocked = new Promise<void>((resolve) => conn.once("unblocked", resolve));
    const probes: Promise<void>[] = [];
    try {
      await ctl("c2", "set_vm_memory_high_watermark", "0.0001");
      // RabbitMQ blocks a connection when it next publishes under the alarm: probe until it does.
      await eventually(
        async () => {
          if (reason === undefined)
            probes.push(ch.publish("", q, `probe-${probes.length}`, { messageId: `probe-${probes.length}` }));
          await new Promise((r) => setTimeout(r, 100));
          return reason !== undefined;
        },
        "connection.blocked on c1 after the alarm on c2",
        100,
        0,
      );
      expect(reason).toMatch(/memory/i);
      const pending = Array.from({ length: 50 }, (_, i) => ch.publish("", q, `m${i}`, { messageId: `m${i}` }));
      let settled = 0;
      for (const p of pending) void p.then(() => settled++);
      await ctl("c1", "-q", "list_connections", "state"); // a round trip through the broker while blocked
      expect(settled).toBe(0); // waiting while the cluster is blocked
      await ctl("c2", "set_vm_memory_high_watermark", "0.4");
      await unblocked;
      await Promise.all([...pending, ...probes]);
      const total = 50 + probes.length;
      await eventually(
        async () => (await ch.queueDeclare(q, { passive: true })).messageCount === total,
        `all ${total} in the queue`,
      );
    } finally {
      await ctl("c2", "set_vm_memory_high_watermark", "0.4");
    }
  });
});
