/**
 * Backpressure: `publish` resolves only when the socket can take more, so a loop of awaited
 * publishes holds at most the socket's high-water mark plus the publish in hand -- asserted on
 * the socket's writableLength, not on time. A blocked connection (connection.blocked, RabbitMQ's
 * resource alarm) holds publishes until connection.unblocked; every such wait can be ended by
 * the publish's AbortSignal. The broker-wide memory alarm itself is test/serial/blocked.test.ts;
 * a broker that stops reading is test/fault/network.test.ts ("slow reader"). Also when the
 * bytes leave: the first publish of a turn at once, the rest of the turn in one write at its end,
 * and in a turn that reads the socket, everything at its end.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import { describe, expect, test } from "vitest";
import { AbortError, connect } from "../../src/index.js";
import { brokerAddress, getBrokerUrl } from "../helpers/broker.js";
import {
  Connection as C,
  longstr,
  methodFrame,
  shortstr,
  standardHandshake,
  startFakeServer,
} from "../helpers/fake-server.js";
import { startProxy } from "../helpers/proxy.js";
import { eventually, outcome, untilReady, useConnections } from "./util.js";

const open = useConnections();

describe("awaited publishes", () => {
  test("a loop of awaited large publishes never holds more than the high-water mark plus one publish", async () => {
    const url = await getBrokerUrl();
    // Through a proxy that stops reading for a while, so that the kernel's buffers fill and the
    // socket's own buffer is what publishes run into.
    const proxy = await startProxy({ target: brokerAddress(url) });
    let socket!: net.Socket;
    const conn = await open({
      heartbeat: 0,
      transport: () => (socket = net.connect({ host: proxy.host, port: proxy.port })),
    });
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const size = 256 * 1024;
    const body = randomBytes(size);
    const n = 100;
    let most = 0;
    let waited = 0;
    proxy.pauseReading("up");
    for (let i = 0; i < n; i++) {
      const p = ch.publish("", queue, body);
      if (socket.writableNeedDrain) {
        waited++;
        proxy.resumeReading("up"); // the wait is seen: let it drain
      }
      await p;
      most = Math.max(most, socket.writableLength);
    }
    // When a publish resolves, the socket is below its high-water mark again or the publish
    // that crossed it is the only one queued on top (plus its few frame headers).
    expect(most).toBeLessThanOrEqual(socket.writableHighWaterMark + size + 1024);
    expect(waited).toBeGreaterThan(0); // 25 MiB cannot all fit in the kernel: some publishes did wait
    await untilReady(ch, queue, n);
    await conn.close();
    await proxy.close();
  });
});

/** From now on, the length of each chunk written to `socket`, in order. */
function recordWrites(socket: net.Socket): number[] {
  const writes: number[] = [];
  const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
  socket.write = ((chunk: Buffer) => {
    writes.push(chunk.length);
    return write(chunk);
  }) as typeof socket.write;
  return writes;
}

/** A channel and an exclusive queue on a connection whose socket the test can watch. */
async function watchedChannel() {
  const url = await getBrokerUrl();
  let socket!: net.Socket;
  const conn = await open({ transport: () => (socket = net.connect(brokerAddress(url))) });
  const ch = await conn.openChannel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  return { socket, ch, queue };
}

describe("when publishes are written", () => {
  test("the first publish of a turn is on the wire before publish() returns; the rest of the turn leaves in one write at its end", async () => {
    const { socket, ch, queue } = await watchedChannel();
    await new Promise((r) => setImmediate(r)); // a turn of its own
    const writes = recordWrites(socket);
    void ch.publish("", queue, "first");
    expect(writes).toHaveLength(1);
    const rest = Array.from({ length: 9 }, (_, i) => ch.publish("", queue, `later ${i}`));
    expect(writes).toHaveLength(1); // held for the end of the turn...
    await new Promise((r) => process.nextTick(r));
    expect(writes).toHaveLength(2); // ...and written together
    expect(writes[1]).toBeGreaterThan(writes[0]! * 8);
    await Promise.all(rest);
    await untilReady(ch, queue, 10);
  });

  test("a loop of awaited publishes leaves in full writes: a write within the turn (a full slab) does not send the next publish alone", async () => {
    const { socket, ch, queue } = await watchedChannel();
    await new Promise((r) => setImmediate(r)); // a turn of its own
    const writes = recordWrites(socket);
    const body = Buffer.alloc(6 * 1024, 0x61);
    const n = 200;
    // ten or so of these fill the writer's 64 KiB slab, so the turn writes many times over.
    for (let i = 0; i < n; i++) await ch.publish("", queue, body);
    await new Promise((r) => setImmediate(r)); // the end of the turn: the last of them leave
    const alone = writes.filter((len) => len < 2 * body.length);
    expect(writes.length).toBeGreaterThan(n / 12);
    // The first publish of the turn is written at once; the last few may be all the end of the turn has.
    expect(alone.length).toBeLessThanOrEqual(2);
    expect(writes.reduce((a, b) => a + b, 0)).toBeGreaterThan(n * body.length);
    await untilReady(ch, queue, n);
  });

  test("publishes set off by frames read from the socket (a consumer's callback) are not written one by one: they leave together at the end of the turn", async () => {
    const url = await getBrokerUrl();
    let socket!: net.Socket;
    const conn = await open({ transport: () => (socket = net.connect(brokerAddress(url))) });
    const ch = await conn.openChannel();
    const { queue: requests } = await ch.queueDeclare("", { exclusive: true });
    const { queue: replies } = await ch.queueDeclare("", { exclusive: true });
    const writes = recordWrites(socket);
    const writtenInCallback: number[] = [];
    let replied = 0;
    await ch.consume(
      requests,
      (m) => {
        const before = writes.length;
        void ch.publish("", replies, m.body).then(() => replied++);
        void ch.publish("", replies, m.body);
        writtenInCallback.push(writes.length - before);
      },
      { noAck: true },
    );
    const pub = await conn.openChannel();
    for (let i = 0; i < 20; i++) await pub.publish("", requests, `request ${i}`);
    await eventually(() => replied === 20, "20 replies published");
    expect(writtenInCallback).toEqual(Array(20).fill(0)); // nothing written from inside the read
    await untilReady(ch, replies, 40);
  });
});

describe("connection.blocked (fake server)", () => {
  test("publishes wait while blocked and resolve on unblocked; a publish's signal ends its wait with AbortError", async () => {
    let unblock!: () => void;
    const unblocked = new Promise<void>((r) => (unblock = r));
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      const open = await c.expectMethod(20, 10);
      await c.send(methodFrame(open.channel, 20, 11, longstr("")));
      await c.send(methodFrame(0, C.classId, 60, shortstr("low on memory"))); // connection.blocked
      await unblocked;
      await c.send(methodFrame(0, C.classId, 61)); // connection.unblocked
    });
    const conn = await connect({ url: server.url(), timeout: 5000 });
    try {
      const reasons: string[] = [];
      conn.on("blocked", (r) => reasons.push(r));
      const ch = await conn.openChannel();
      await eventually(() => conn.blocked, "connection.blocked");
      expect(conn.blocked).toBe(true);
      expect(reasons).toEqual(["low on memory"]);
      let resolved = false;
      const waiting = ch.publish("", "q", "x").then(() => (resolved = true));
      const ac = new AbortController();
      const aborted = outcome(ch.publish("", "q", "y", { signal: ac.signal }));
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      expect(resolved).toBe(false);
      ac.abort();
      expect(((await aborted) as { error: unknown }).error).toBeInstanceOf(AbortError);
      const gone = new Promise<void>((r) => conn.once("unblocked", () => r()));
      unblock();
      await gone;
      await waiting;
      expect(conn.blocked).toBe(false);
      // An already-aborted signal: nothing is sent at all.
      expect(
        ((await outcome(ch.publish("", "q", "z", { signal: AbortSignal.abort() }))) as { error: unknown }).error,
      ).toBeInstanceOf(AbortError);
    } finally {
      await server.close();
      await conn.close();
    }
  });
});
