/**
 * connection.tune negotiation, as RabbitMQ's "Connections" and "Heartbeats" guides document it:
 * frame_max proposed at 131072 by default, 0 meaning no limit, a server value below the spec's
 * 4096 minimum (frame-min-size) refused; channel_max the lower non-zero value; heartbeat the
 * lower when both are non-zero, else the non-zero one. A scripted fake server proposes what
 * RabbitMQ would not; heartbeats actually sent when idle are observed against the real broker
 * on the "warren:frame:out" diagnostics channel.
 */
import diagnostics from "node:diagnostics_channel";
import { afterEach, describe, expect, test } from "vitest";
import { ConnectionClosedError, FrameError, connect, type Connection, type FrameMessage } from "../../src/index.js";
import {
  longstr,
  methodFrame,
  standardHandshake,
  startFakeServer,
  table,
  u16,
  u32,
  u8,
  type FakeServer,
  type HandshakeOptions,
  type HandshakeResult,
} from "../helpers/fake-server.js";
import { eventually, outcome, useConnections } from "./util.js";

const open = useConnections();
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Connects to a fake server proposing `tune`; returns the connection and what the client answered in tune-ok. */
async function negotiate(
  tune: HandshakeOptions,
  client: Parameters<typeof connect>[0] & object = {},
): Promise<{ conn: Connection; said: HandshakeResult; server: FakeServer }> {
  let said!: HandshakeResult;
  const server = await startFakeServer(async (c) => {
    said = await standardHandshake(c, tune);
  });
  cleanup.push(() => server.close());
  const conn = await connect({ ...client, url: server.url() });
  // The fake server answers no close: ending it releases the client.
  cleanup.push(async () => {
    await server.close();
    await conn.close();
  });
  return { conn, said, server };
}

describe("frame_max", () => {
  test("131072 is proposed by default, and taken when the server has no limit (0)", async () => {
    const { conn, said } = await negotiate({ frameMax: 0 });
    expect(said.frameMax).toBe(131072);
    expect(conn.frameMax).toBe(131072);
  });

  test("a lower server value wins; 0 on both sides means no limit", async () => {
    expect((await negotiate({ frameMax: 4096 })).said.frameMax).toBe(4096);
    const { conn, said } = await negotiate({ frameMax: 0 }, { frameMax: 0 });
    expect(said.frameMax).toBe(0);
    expect(conn.frameMax).toBe(0);
  });

  test("a server frame_max below 4096 is refused with a clear error", async () => {
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c, { frameMax: 2048 }).catch(() => undefined); // the client hangs up instead of tune-ok
    });
    cleanup.push(() => server.close());
    const r = await outcome(connect({ url: server.url(), connectionTimeout: 5000 }));
    const err = (r as { error: ConnectionClosedError }).error;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toMatch(/frame_max 2048/);
    expect(err.message).toMatch(/4096/);
  });

  test("a broker that resets the socket after tune-ok (RabbitMQ 4.1+ with frame_max below 8192) gets an error naming what was negotiated", async () => {
    const server = await startFakeServer(async (c) => {
      await c.send(
        methodFrame(
          0,
          10,
          10,
          Buffer.concat([u8(0), u8(9), table({ product: "fake" }), longstr("PLAIN"), longstr("en_US")]),
        ),
      );
      await c.expectMethod(10, 11);
      await c.send(methodFrame(0, 10, 30, Buffer.concat([u16(2047), u32(4096), u16(0)]))); // tune, as a 3.x broker may be set up
      await c.expectMethod(10, 31);
      c.socket.resetAndDestroy();
    });
    cleanup.push(() => server.close());
    const r = await outcome(connect({ url: server.url(), connectionTimeout: 5000 }));
    const err = (r as { error: ConnectionClosedError }).error;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toMatch(/after tune-ok \(negotiated frame_max 4096, channel_max 2047, heartbeat 60/);
    expect(err.message).toMatch(/8192/);
  });

  test("RabbitMQ agrees to what we propose: the negotiated value is the lower one", async () => {
    const conn = await open({ frameMax: 8192 });
    expect(conn.frameMax).toBe(8192);
    // A message larger than one frame still makes it through, split by the negotiated limit.
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const body = Buffer.alloc(50_000, 7);
    await ch.publish("", queue, body);
    const got = await eventually(() => ch.get(queue, { noAck: true }).then((m) => m ?? undefined), "the message");
    expect(got.body.equals(body)).toBe(true);
  });
});

describe("inbound frame cap", () => {
  test("with no frame_max negotiated (0), maxInboundFrameSize still bounds what a peer may send: 501, connection closed", async () => {
    let closeCode: number | undefined;
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c, { frameMax: 0 });
      await c.expectMethod(20, 10); // the client asks for a channel; this comes instead of open-ok
      const big = Buffer.alloc(7 + 10_000 + 1);
      big.writeUInt8(3, 0); // a body frame...
      big.writeUInt16BE(0, 1);
      big.writeUInt32BE(10_000, 3); // ...of 10,000 bytes, past the 8192 cap
      big.writeUInt8(0xce, 7 + 10_000);
      await c.send(big);
      const close = await c.expectMethod(10, 50);
      closeCode = close.args.readUInt16BE(0);
    });
    cleanup.push(() => server.close());
    const conn = await connect({ url: server.url(), frameMax: 0, maxInboundFrameSize: 8192 });
    expect(conn.frameMax).toBe(0);
    const closed = new Promise<unknown[]>((r) => conn.once("close", (...a) => r(a)));
    const opening = await outcome(conn.openChannel());
    const [err] = (await closed) as [FrameError];
    expect((opening as { error: unknown }).error).toBe(err);
    expect(err).toBeInstanceOf(FrameError);
    expect(err.code).toBe(501);
    expect(err.message).toMatch(/8192/);
    await eventually(() => closeCode === 501, "connection.close 501 at the server");
  });
});

describe("channel_max", () => {
  test("the lower non-zero value; 0 on both sides means 65535", async () => {
    expect((await negotiate({ channelMax: 10 })).said.channelMax).toBe(10);
    expect((await negotiate({ channelMax: 0 }, { channelMax: 50 })).said.channelMax).toBe(50);
    const { conn, said } = await negotiate({ channelMax: 0 }, { channelMax: 0 });
    expect(said.channelMax).toBe(65535);
    expect(conn.channelMax).toBe(65535);
  });
});

describe("heartbeat", () => {
  // [client proposes, server proposes, negotiated]
  const rules: [number, number, number][] = [
    [60, 5, 5], // both non-zero: the lower
    [3, 10, 3],
    [0, 7, 7], // one zero: the other
    [4, 0, 4],
    [0, 0, 0], // both zero: none
  ];
  test.each(rules)("client %i, server %i -> %i", async (mine, theirs, expected) => {
    const { conn, said } = await negotiate({ heartbeat: theirs }, { heartbeat: mine });
    expect(said.heartbeat).toBe(expected);
    expect(conn.heartbeat).toBe(expected);
  });

  test("any inbound frame counts as life; after two silent intervals the peer is declared dead", async () => {
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c, { heartbeat: 1 });
      // No heartbeat frames at all, only other traffic (connection.unblocked), every 300 ms.
      const timer = setInterval(() => void c.send(methodFrame(0, 10, 61)).catch(() => undefined), 300);
      await stopped;
      clearInterval(timer);
    });
    cleanup.push(() => server.close());
    const conn = await connect({ url: server.url(), heartbeat: 1 });
    cleanup.push(() => conn.close());
    let unblocks = 0;
    conn.on("unblocked", () => unblocks++);
    const closed = new Promise<unknown>((r) => conn.once("close", r));
    await eventually(() => unblocks >= 8, "2.4 s of traffic", 200, 25); // past two intervals
    expect(conn.closed).toBe(false);
    stop(); // silence from now on
    const err = await closed;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect((err as Error).message).toMatch(/missed heartbeats/);
  });

  test("an idle connection sends heartbeat frames (seen on warren:frame:out), and the broker keeps it open", async () => {
    const conn = await open({ heartbeat: 1 });
    expect(conn.heartbeat).toBe(1);
    const beats: number[] = [];
    const listener = (m: unknown) => {
      const msg = m as FrameMessage;
      if (msg.connection === conn && msg.frame.type === 8) beats.push(msg.channel);
    };
    diagnostics.subscribe("warren:frame:out", listener);
    try {
      await eventually(() => beats.length >= 2, "two heartbeats out", 200, 25);
      expect(beats.every((ch) => ch === 0)).toBe(true);
      expect(conn.closed).toBe(false);
      // Still alive end to end after the idle period.
      const ch = await conn.openChannel();
      await ch.queueDeclare("", { exclusive: true });
    } finally {
      diagnostics.unsubscribe("warren:frame:out", listener);
    }
  });
});
