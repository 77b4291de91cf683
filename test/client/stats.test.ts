/**
 * Operating figures against the real broker: conn.stats(), ch.stats() and consumer.stats()
 * count every publish and delivery exactly (each settle kind, returns, redeliveries, timeouts);
 * conn.state and its "state" events across a recovery and a close; ping() as a readiness probe.
 */
import { once } from "node:events";
import { afterEach, describe, expect, test } from "vitest";
import {
  ConnectionClosedError,
  ReturnedError,
  TimeoutError,
  connect,
  type Connection,
  type ConnectionState,
} from "../../src/index.js";
import { brokerAddress, getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { forceCloseConnection } from "../helpers/force-close.js";
import { startProxy } from "../helpers/proxy.js";
import { eventually, outcome, useConnections } from "./util.js";

const open = useConnections();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A connection with recovery through a fault proxy of its own. */
async function throughProxy(): Promise<{ conn: Connection; proxy: Awaited<ReturnType<typeof startProxy>> }> {
  const url = await getBrokerUrl();
  const proxy = await startProxy({ target: brokerAddress(url) });
  cleanups.push(() => proxy.close());
  const conn = await connect({
    url: proxy.url(url),
    connectionName: uniqueName("stats"),
    recovery: { initialDelay: 10, maxDelay: 100 },
    timeout: 5000,
  });
  cleanups.push(() => conn.close());
  return { conn, proxy };
}

describe("stats()", () => {
  test("every publish and delivery is counted once, by how it settled, on the channel and the connection (closed channels included)", async () => {
    const conn = await open();
    const pub = await conn.openChannel();
    await pub.confirmSelect();
    const { queue } = await pub.queueDeclare("", { exclusive: true });
    const body = "x".repeat(100);
    await Promise.all(Array.from({ length: 50 }, (_, i) => pub.publish("", queue, body, { messageId: String(i) })));
    const missing = uniqueName("no-such-queue");
    const returns = await Promise.all(
      Array.from({ length: 3 }, () => outcome(pub.publish("", missing, "r", { mandatory: true }))),
    );
    for (const r of returns) expect(!r.ok && r.error instanceof ReturnedError).toBe(true);
    expect(pub.stats().publishes).toEqual({
      sent: 53,
      confirmed: 53,
      nacked: 0,
      returned: 3,
      timedOut: 0,
      unconfirmed: 0,
    });

    // ids 0-29 acked; 30-39 nacked once (back to the queue, then acked when redelivered); 40-49 rejected without requeue.
    const sub = await conn.openChannel();
    await sub.prefetch(10);
    // 60 calls in all: the 10 nacked ones come back (anywhere among the others: a requeued
    // message goes back to its place in the queue).
    let calls = 0;
    const done = new Promise<void>((resolve) => {
      void sub.consume(queue, (msg) => {
        const id = Number(msg.properties.messageId);
        if (id >= 40) msg.reject({ requeue: false });
        else if (id >= 30 && !msg.fields.redelivered) msg.nack();
        else msg.ack();
        if (++calls === 60) resolve();
      });
    });
    await done;
    // The settles are written by now (a round trip on the channel follows them), and counted when written.
    await sub.prefetch(10);
    expect(sub.stats().deliveries).toEqual({
      received: 60,
      redelivered: 10,
      acked: 40,
      nacked: 10,
      rejected: 10,
      buffered: 0,
      handlersRunning: 0,
    });

    await pub.close();
    const all = conn.stats();
    expect(all.publishes).toEqual({ sent: 53, confirmed: 53, nacked: 0, returned: 3, timedOut: 0, unconfirmed: 0 });
    expect(all.deliveries).toMatchObject({ received: 60, redelivered: 10, acked: 40, nacked: 10, rejected: 10 });
    expect(all.channels).toBe(1);
    expect(all.bytes.out).toBeGreaterThan(53 * 100);
    expect(all.bytes.in).toBeGreaterThan(60 * 100);
    expect(all.recoveries).toEqual({ count: 0, totalMs: 0, lastMs: 0 });
    expect(all.blocked).toEqual({ count: 0, totalMs: 0, now: false });
  });

  test("a consumer's figures: deliveries, what waits and runs now; a publish that gave up waiting for room counts as timed out", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    for (let i = 0; i < 6; i++) await ch.publish("", queue, String(i));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const consumer = await ch.consume(queue, () => gate, { concurrency: 2, settle: "auto" }); // prefetch 4: 2 run, 2 wait
    const busy = await eventually(() => {
      const s = consumer.stats();
      return s.handlersRunning === 2 && s.buffered === 2 && s;
    }, "2 handlers running, 2 deliveries waiting");
    expect(busy).toEqual({ delivered: 4, buffered: 2, handlersRunning: 2, paused: false });
    expect(ch.stats().deliveries).toMatchObject({ buffered: 2, handlersRunning: 2 });
    release();
    await eventually(() => consumer.stats().delivered === 6 && consumer.stats().handlersRunning === 0, "all 6 handled");

    // Confirm mode with room for one: a publish that waits for room past its timeout.
    const { conn: slow, proxy } = await throughProxy();
    const pub = await slow.openChannel();
    await pub.confirmSelect({ maxUnconfirmed: 1 });
    proxy.blackhole(); // the first publish's confirm never comes
    const first = outcome(pub.publish("", queue, "a"));
    const second = await outcome(pub.publish("", queue, "b", { timeout: 50 }));
    expect(!second.ok && second.error instanceof TimeoutError).toBe(true);
    expect(pub.stats().publishes).toEqual({
      sent: 1,
      confirmed: 0,
      nacked: 0,
      returned: 0,
      timedOut: 1,
      unconfirmed: 1,
    });
    proxy.heal();
    await first;
  });
});

describe("state and ping()", () => {
  test("open -> recovering -> open across a reset, recoveries timed; ping() answers, times out on a silent broker, and fails once closed", async () => {
    const { conn, proxy } = await throughProxy();
    const states: string[] = [];
    conn.on("state", (state: ConnectionState, previous: ConnectionState) => states.push(`${previous}->${state}`));
    expect(conn.state).toBe("open");
    expect(await conn.ping()).toBeGreaterThanOrEqual(0);

    proxy.resetAll();
    await once(conn, "reconnected");
    await eventually(() => conn.state === "open", "open again");
    expect(states).toEqual(["open->recovering", "recovering->open"]);
    const { recoveries } = conn.stats();
    expect(recoveries.count).toBe(1);
    expect(recoveries.lastMs).toBeGreaterThan(0);
    expect(recoveries.totalMs).toBe(recoveries.lastMs);
    expect(await conn.ping({ timeout: 5000 })).toBeGreaterThanOrEqual(0);

    proxy.blackhole();
    const silent = await outcome(conn.ping({ timeout: 100 }));
    expect(!silent.ok && silent.error instanceof TimeoutError).toBe(true);
    proxy.heal(); // resets the connection: it recovers again
    await eventually(() => conn.stats().recoveries.count === 2 && conn.state === "open", "the second recovery");
    expect(await conn.ping()).toBeGreaterThanOrEqual(0);

    await conn.close();
    expect(states.slice(2)).toEqual(["open->recovering", "recovering->open", "open->closing", "closing->closed"]);
    expect(conn.state).toBe("closed");
    const closed = await outcome(conn.ping());
    expect(!closed.ok && closed.error instanceof ConnectionClosedError).toBe(true);
  });

  test("pings made at once, as a probe and a metrics scrape would, share one channel", async () => {
    const conn = await open();
    const times = await Promise.all([conn.ping(), conn.ping(), conn.ping()]);
    expect(times.every((t) => t >= 0)).toBe(true);
    expect(conn.stats().channels).toBe(1);
  });

  test("a connection the broker closes (no recovery) goes from open to closed, one event", async () => {
    const name = uniqueName("state");
    const conn = await open({ connectionName: name });
    const states: string[] = [];
    conn.on("state", (state, previous) => states.push(`${previous}->${state}`));
    const closed = once(conn, "close");
    await eventually(async () => (await forceCloseConnection(name)) > 0, "the broker to see the connection");
    await closed;
    expect(states).toEqual(["open->closed"]);
    expect(conn.state).toBe("closed");
  });
});
