/**
 * The confirmTimeout connect option (confirm-watch.ts): publishes waiting for confirms that do
 * not come end as a ConfirmTimeoutError, or, with recovery, go out again on another host; slow
 * confirms that keep coming, and a broker blocking the connection, are no stall. A broker that
 * stops confirming does not on request (RabbitMQ 4.3 does after a partition of the publisher's
 * node, which the soak provokes): a scripted server stands in.
 */
import { describe, expect, test } from "vitest";
import { ConfirmTimeoutError, connect, type Connection } from "../../src/index.js";
import {
  asMethod,
  connectionCloseOkFrame,
  longstr,
  methodFrame,
  shortstr,
  standardHandshake,
  startFakeServer,
  u64,
  u8,
  type FakeConnection,
} from "../helpers/fake-server.js";
import { outcome } from "./util.js";

interface Script {
  /** Ack each publish this many ms after the one before (undefined: never). */
  ackEveryMs?: number;
  /** After the first publish, block the connection (connection.blocked) for this long. */
  blockMs?: number;
}

/** A broker with channels in confirm mode that confirms as `script` says; it counts publishes by body. */
async function confirmer(script: Script) {
  const bodies: string[] = [];
  const server = await startFakeServer(async (c: FakeConnection) => {
    await standardHandshake(c);
    const waiting: { channel: number; tag: number }[] = [];
    const tags = new Map<number, number>();
    let blocked = false;
    const pump =
      script.ackEveryMs === undefined
        ? undefined
        : setInterval(() => {
            const next = blocked ? undefined : waiting.shift();
            if (next)
              void c.send(methodFrame(next.channel, 60, 80, Buffer.concat([u64(next.tag), u8(0)]))).catch(() => {});
          }, script.ackEveryMs);
    try {
      for (;;) {
        const f = await c.readFrame().catch(() => undefined);
        if (f === undefined) return;
        if (f.type === 3) bodies.push(f.payload.toString());
        if (f.type !== 1) continue;
        const m = asMethod(f);
        const id = `${m.classId}.${m.methodId}`;
        if (id === "20.10") await c.send(methodFrame(f.channel, 20, 11, longstr("")));
        else if (id === "85.10") await c.send(methodFrame(f.channel, 85, 11));
        else if (id === "20.40") await c.send(methodFrame(f.channel, 20, 41));
        else if (id === "10.50") return void (await c.send(connectionCloseOkFrame()));
        else if (id === "60.40") {
          const tag = (tags.get(f.channel) ?? 0) + 1;
          tags.set(f.channel, tag);
          waiting.push({ channel: f.channel, tag });
          if (script.blockMs !== undefined && tag === 1) {
            blocked = true;
            await c.send(methodFrame(0, 10, 60, shortstr("low on memory")));
            setTimeout(() => {
              blocked = false;
              void c.send(methodFrame(0, 10, 61)).catch(() => {});
            }, script.blockMs);
          }
        }
      }
    } finally {
      clearInterval(pump);
    }
  });
  return { server, bodies };
}

/** A recovering connection over two hosts, one that never confirms and then one that does, given to `run`. */
async function stuckThenGood(
  run: (c: { conn: Connection; stuck: Confirmer; good: Confirmer }) => Promise<void>,
): Promise<void> {
  const stuck = await confirmer({});
  const good = await confirmer({ ackEveryMs: 1 });
  try {
    const conn = await connect({
      url: [stuck.server.url(), good.server.url()],
      confirmTimeout: 300,
      recovery: { initialDelay: 10, maxDelay: 50, republishUnconfirmed: true },
    });
    await run({ conn, stuck, good });
    await conn.close();
  } finally {
    await stuck.server.close();
    await good.server.close();
  }
}

type Confirmer = Awaited<ReturnType<typeof confirmer>>;

async function publishAll(conn: Connection, n: number, prefix = "m") {
  const ch = await conn.openChannel();
  await ch.confirmSelect();
  return Promise.all(Array.from({ length: n }, (_, i) => outcome(ch.publish("", "q", `${prefix}${i}`))));
}

describe("confirmTimeout", () => {
  test("a broker that never confirms: every waiting publish rejects with ConfirmTimeoutError, and the connection closes with it", async () => {
    const { server, bodies } = await confirmer({});
    try {
      const conn = await connect({ url: server.url(), confirmTimeout: 300 });
      const closed = new Promise<unknown>((resolve) => conn.once("close", resolve));
      const results = await publishAll(conn, 5);
      expect(results.map((r) => !r.ok && r.error instanceof ConfirmTimeoutError)).toEqual([
        true,
        true,
        true,
        true,
        true,
      ]);
      const reason = await closed;
      expect(reason).toBeInstanceOf(ConfirmTimeoutError);
      expect((reason as Error).message).toMatch(
        /no publisher confirm on channel 1 for 300 ms while 5 publishes waited for one \(confirmTimeout\)/,
      );
      expect(bodies).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    } finally {
      await server.close();
    }
  });

  test("confirms that keep coming, if slowly, are no stall: each publish waits longer than the timeout, all resolve", async () => {
    const { server } = await confirmer({ ackEveryMs: 50 });
    try {
      const conn = await connect({ url: server.url(), confirmTimeout: 1000 });
      // 40 acks 50 ms apart: the last publish waits about 2 s, twice the timeout.
      const results = await publishAll(conn, 40);
      expect(results.every((r) => r.ok)).toBe(true);
      expect(conn.state).toBe("open");
      await conn.close();
    } finally {
      await server.close();
    }
  });

  test("while the broker blocks the connection no confirm is due: a block three times the timeout is no stall", async () => {
    const { server } = await confirmer({ ackEveryMs: 10, blockMs: 1200 });
    try {
      const conn = await connect({ url: server.url(), confirmTimeout: 400 });
      const blocked = new Promise<void>((resolve) => conn.once("blocked", () => resolve()));
      const results = await publishAll(conn, 3);
      await blocked;
      expect(results.every((r) => r.ok)).toBe(true);
      expect(conn.state).toBe("open");
      await conn.close();
    } finally {
      await server.close();
    }
  });

  test("an awaited loop, as users write it, on a broker that stops confirming: with recovery the stuck publish goes out elsewhere and the loop carries on to the end", async () => {
    await stuckThenGood(async ({ conn, stuck, good }) => {
      const ch = await conn.openChannel();
      await ch.confirmSelect();
      for (let i = 0; i < 5; i++) await ch.publish("", "q", `m${i}`);
      // m0 waited on the stuck host, and went again to the good one with the rest.
      expect(stuck.bodies).toEqual(["m0"]);
      expect(good.bodies).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    });
  });

  test("with recovery: the connection is lost with ConfirmTimeoutError, the next host is tried first, and every waiting publish is confirmed there", async () => {
    await stuckThenGood(async ({ conn, stuck, good }) => {
      const lost: unknown[] = [];
      conn.on("disconnect", (reason) => lost.push(reason));
      const results = await publishAll(conn, 10);
      expect(results.every((r) => r.ok)).toBe(true);
      expect(lost).toHaveLength(1);
      expect(lost[0]).toBeInstanceOf(ConfirmTimeoutError);
      // Every publish went to the stuck host once and to the good one once, by body.
      const all = Array.from({ length: 10 }, (_, i) => `m${i}`);
      expect(stuck.bodies).toEqual(all);
      expect(good.bodies.sort()).toEqual(all.sort());
      expect(stuck.server.connections).toHaveLength(1);
    });
  });

  test("with recovery and onConfirm: each callback runs once, with no error, after its publish went again to the next host", async () => {
    await stuckThenGood(async ({ conn, stuck, good }) => {
      const ch = await conn.openChannel();
      await ch.confirmSelect();
      const calls = new Map<string, unknown[]>();
      const all = Array.from({ length: 10 }, (_, i) => `m${i}`);
      for (const id of all)
        await ch.publish("", "q", id, { onConfirm: (err) => calls.set(id, [...(calls.get(id) ?? []), err]) });
      while (calls.size < all.length) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50)); // room for a second call, if there were one
      expect([...calls.keys()].sort()).toEqual([...all].sort());
      expect([...calls.values()].every((seen) => seen.length === 1 && seen[0] === undefined)).toBe(true);
      expect(stuck.bodies).toEqual(all);
      expect(good.bodies.sort()).toEqual([...all].sort());
    });
  });
});
