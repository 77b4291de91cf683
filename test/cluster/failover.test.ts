/**
 * A real three-node RabbitMQ 4.3 cluster, and nodes that die under the client: publishers in
 * confirm mode and consumers on quorum queues carry on through recovery to another node without
 * losing or duplicating what they promised. Every message is counted by its id on both sides.
 * Each test that kills a node starts it again in a `finally`.
 */
import { describe, expect, test } from "vitest";
import { ConnectionClosedError, connect, type Channel, type Connection, type Message } from "../../src/index.js";
import { eventually } from "../client/util.js";
import { uniqueName } from "../helpers/broker.js";
import { failOnUnhandledRejection } from "../helpers/leaks.js";
import { ctl, kill, leaderOf, restoreCluster, url, useCluster, type Node } from "./cluster.js";

failOnUnhandledRejection();

const { on, cleanup } = useCluster();

/** A recovering connection to the cluster, trying `first` and then the others. */
async function recovering(first: Node, options: { republishUnconfirmed?: boolean } = {}): Promise<Connection> {
  const order = [first, ...(["c1", "c2", "c3"] as const).filter((n) => n !== first)];
  const conn = await connect({
    url: order.map(url),
    recovery: { initialDelay: 50, maxDelay: 500, waitTimeout: 60_000, ...options },
    timeout: 15_000,
  });
  cleanup(() => conn.close());
  return conn;
}

/**
 * A quorum queue whose leader is on `leader` (declared from a connection to that node with
 * x-queue-leader-locator client-local). Deliveries a dead node's consumers held come back after
 * x-consumer-disconnected-timeout: 60 s by default, 1 s here.
 */
async function quorumQueue(leader: Node): Promise<string> {
  const queue = uniqueName("cluster-qq");
  const ch = await (await on(leader)).openChannel();
  await ch.queueDeclare(queue, {
    durable: true,
    queueType: "quorum",
    arguments: { "x-queue-leader-locator": "client-local", "x-consumer-disconnected-timeout": 1000 },
  });
  cleanup(async () => {
    await restoreCluster();
    await (await (await on("c1")).openChannel()).queueDelete(queue);
  });
  expect(await leaderOf(queue, leader)).toBe(leader);
  return queue;
}

/** Ready plus unacknowledged messages of `queue`, as the cluster counts them. */
async function messagesIn(queue: string): Promise<number> {
  const out = await ctl("c3", "-q", "list_queues", "name", "messages", "--no-table-headers");
  const line = out.split("\n").find((l) => l.split("\t")[0] === queue);
  return Number(line?.split("\t")[1] ?? NaN);
}

/** Every message id in `queue`, read through `node` (basic.get with acks until empty). */
async function drain(node: Node, queue: string): Promise<string[]> {
  const ch = await (await on(node)).openChannel();
  const ids: string[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === null) return ids;
    ids.push(m.properties.messageId!);
  }
}

interface Outcome {
  resolved: Set<string>;
  rejected: Map<string, unknown>;
  settledTwice: string[];
}

/** Publishes N messages with ids, at most `window` unconfirmed, killing `victim` once `killAt` have resolved. */
async function publishThroughKill(
  ch: Channel,
  queue: string,
  n: number,
  killAt: number,
  victim: Node,
): Promise<Outcome> {
  const out: Outcome = { resolved: new Set(), rejected: new Map(), settledTwice: [] };
  let killed: Promise<void> | undefined;
  const settle = (id: string, err?: unknown) => {
    if (out.resolved.has(id) || out.rejected.has(id)) out.settledTwice.push(id);
    if (err === undefined) out.resolved.add(id);
    else out.rejected.set(id, err);
    if (out.resolved.size === killAt && killed === undefined) killed = kill(victim);
  };
  const window = 50;
  for (let i = 0; i < n; i += window) {
    await Promise.all(
      Array.from({ length: Math.min(window, n - i) }, (_, j) => {
        const id = `m${i + j}`;
        return ch.publish("", queue, id, { messageId: id, deliveryMode: 2 }).then(
          () => settle(id),
          (e: unknown) => settle(id, e),
        );
      }),
    );
  }
  await killed;
  return out;
}

describe("publishers in confirm mode", () => {
  test.each([
    ["the node the publisher is connected to", "c1", "c1"],
    ["the queue leader's node (the publisher's own node lives)", "c2", "c1"],
  ] as const)(
    "killing %s: every resolved publish is in the queue, none settled twice, the rest rejected as recoverable",
    async (_what, leader, publisherNode) => {
      const queue = await quorumQueue(leader);
      const conn = await recovering(publisherNode);
      const ch = await conn.openChannel();
      await ch.confirmSelect();
      const victim: Node = leader === publisherNode ? publisherNode : leader;
      try {
        const out = await publishThroughKill(ch, queue, 1500, 300, victim);
        expect(out.settledTwice).toEqual([]);
        expect(out.resolved.size + out.rejected.size).toBe(1500);
        for (const e of out.rejected.values()) {
          expect(e).toBeInstanceOf(ConnectionClosedError);
          expect((e as ConnectionClosedError).recoverable).toBe(true);
        }
        const survivor: Node = (["c1", "c2", "c3"] as const).find((n) => n !== victim)!;
        const inQueue = new Set(await drain(survivor, queue));
        const lost = [...out.resolved].filter((id) => !inQueue.has(id));
        console.log(
          `[cluster] kill ${victim}: ${out.resolved.size} resolved, ${out.rejected.size} rejected, ${inQueue.size} in the queue, ${lost.length} resolved but lost`,
        );
        expect(lost).toEqual([]);
      } finally {
        await restoreCluster();
      }
    },
  );

  test("with republishUnconfirmed, the publishes unconfirmed at the kill are sent again: every id is in the queue at least once", async () => {
    const queue = await quorumQueue("c2");
    const conn = await recovering("c1", { republishUnconfirmed: true });
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    try {
      const out = await publishThroughKill(ch, queue, 1000, 200, "c1");
      expect(out.settledTwice).toEqual([]);
      expect([...out.rejected.keys()]).toEqual([]);
      const inQueue = new Set(await drain("c3", queue));
      const missing = Array.from({ length: 1000 }, (_, i) => `m${i}`).filter((id) => !inQueue.has(id));
      expect(missing).toEqual([]);
    } finally {
      await restoreCluster();
    }
  });
});

describe("consumers", () => {
  test("a manual-ack consumer on a quorum queue moves to another node when its own dies: none lost, redelivered ones flagged, no stall", async () => {
    const N = 300;
    const queue = await quorumQueue("c2");
    const pub = await (await on("c2")).openChannel();
    await pub.confirmSelect();
    await Promise.all(
      Array.from({ length: N }, (_, i) => pub.publish("", queue, `m${i}`, { messageId: `m${i}`, deliveryMode: 2 })),
    );

    const conn = await recovering("c1");
    const ch = await conn.openChannel();
    await ch.prefetch(10);
    const seen = new Map<string, number>();
    const redelivered = new Set<string>();
    let killedAt = 0;
    let firstAfterKill = 0;
    let reconnected = false;
    // From the 100th id the consumer holds its window unacked while its node is killed; once the
    // connection is lost it acks again (what it held is redelivered on the new connection).
    let holding = false;
    conn.on("disconnect", () => (holding = false));
    conn.on("reconnected", () => (reconnected = true));
    await ch.consume(queue, (m: Message) => {
      const id = m.properties.messageId!;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      if (m.fields.redelivered) redelivered.add(id);
      if (reconnected && firstAfterKill === 0) firstAfterKill = Date.now();
      if (seen.size === 100 && killedAt === 0) {
        holding = true;
        killedAt = Date.now();
        void kill("c1");
      }
      if (!holding) ch.ack(m);
    });
    try {
      await eventually(() => seen.size === N, `all ${N} ids consumed`, 1200, 50);
      // Drained and all acked: the window held at the kill came back (after
      // x-consumer-disconnected-timeout), redelivered, and was acked on the new connection.
      await eventually(
        async () => (await messagesIn(queue)) === 0 && redelivered.size > 0,
        "every message acked, the held window redelivered",
        600,
        50,
      );
      console.log(
        `[cluster] consumer: first delivery ${firstAfterKill - killedAt} ms after its node was killed; ${redelivered.size} redelivered`,
      );
      expect(seen.size).toBe(N);
      for (const [id, n] of seen) if (n > 1) expect(redelivered.has(id), `${id} came ${n} times`).toBe(true);
    } finally {
      await restoreCluster();
    }
  });
});
