/**
 * A hostile or broken server, played by the scripted fake server (test/helpers/fake-server.ts):
 * only what RabbitMQ will not do on request. Each case checks that the client
 *
 * - fails with a typed error: a FrameError whose code is the reply code the spec gives the
 *   violation (DESIGN.md: FrameError is the error for a peer that breaks the protocol);
 * - tells the server why with connection.close carrying that reply code (spec 4.2.2: a peer
 *   that detects an error closes the connection with a reply code), except during the
 *   handshake, where the spec has the client just close the socket;
 * - rejects every pending call with that same error and emits "close" once;
 * - neither crashes, nor buffers what it refused, nor leaves a socket or timer behind.
 *
 * Reply codes (spec, "constants"): 501 frame-error (a malformed frame), 502 syntax-error
 * (invalid field values), 503 command-invalid (a method invalid here), 504 channel-error (a
 * channel not open), 505 unexpected-frame (e.g. a content header where a method was due).
 */
import { afterEach, describe, expect, test } from "vitest";
import {
  ChannelClosedError,
  connect,
  ConnectionClosedError,
  FrameError,
  TimeoutError,
  type Connection,
  type ConnectOptions,
} from "../../src/index.js";
import {
  Connection as C,
  Cursor,
  FRAME_BODY,
  FRAME_METHOD,
  asMethod,
  bodyFrame,
  connectionCloseOkFrame,
  headerFrame,
  methodFrame,
  rawFrame,
  shortstr,
  standardHandshake,
  startFakeServer,
  u16,
  u32,
  u64,
  u8,
  type FakeConnection,
  type HandshakeOptions,
} from "../helpers/fake-server.js";
import {
  expectNoLeakedResources,
  failOnUnhandledRejection,
  recordCloses,
  resourceCounts,
  settled,
} from "../helpers/leaks.js";

failOnUnhandledRejection();

const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const CHANNEL = { classId: 20, open: 10, openOk: 11 } as const;
const QUEUE_DECLARE = [50, 10] as const;
const BASIC = { classId: 60, deliver: 60 } as const;

/** What the server received as the client's connection.close, or "eof" if the socket ended first. */
type Received = { replyCode: number; replyText: string } | "eof";

/** Read until connection.close (skipping anything else) or the end of the stream. */
async function readClose(conn: FakeConnection): Promise<Received> {
  for (;;) {
    let frame;
    try {
      frame = await conn.readFrame();
    } catch {
      return "eof";
    }
    if (frame.type !== FRAME_METHOD) continue;
    const m = asMethod(frame);
    if (m.classId === C.classId && m.methodId === C.close) {
      const c = new Cursor(m.args);
      return { replyCode: c.u16(), replyText: c.shortstr() };
    }
  }
}

/** The server's side of channel.open: answers open-ok on whatever channel the client chose. */
async function acceptChannel(conn: FakeConnection): Promise<number> {
  const open = await conn.expectMethod(CHANNEL.classId, CHANNEL.open);
  await conn.send(methodFrame(open.channel, CHANNEL.classId, CHANNEL.openOk, u32(0)));
  return open.channel;
}

interface Case {
  /** After the handshake and one open channel with a queue.declare pending: the hostile bytes. */
  attack: (conn: FakeConnection, channel: number) => Promise<void>;
  tune?: HandshakeOptions;
  client?: Omit<ConnectOptions, "url">;
}

/**
 * Runs one case: handshake, a channel, a pending RPC (queue.declare the server reads and never
 * answers), then the attack. Returns the client's close reason, what the server received, and
 * the outcome of the pending call.
 */
async function run(c: Case): Promise<{ reason: FrameError; received: Received; conn: Connection }> {
  const before = resourceCounts();
  let received!: Promise<Received>;
  const server = await startFakeServer(async (conn) => {
    await standardHandshake(conn, c.tune);
    const channel = await acceptChannel(conn);
    await conn.expectMethod(...QUEUE_DECLARE);
    await c.attack(conn, channel);
    received = readClose(conn);
    await received;
  });
  cleanup.push(() => server.close());
  const conn = await connect({ url: server.url(), heartbeat: 0, ...c.client });
  const closes = recordCloses(conn);
  const ch = await conn.openChannel();
  const chCloses = recordCloses(ch);
  const pending = settled(ch.queueDeclare("q"));

  const outcome = await pending;
  await server.done();
  expect(closes).toHaveLength(1);
  const reason = closes[0] as FrameError;
  expect(reason).toBeInstanceOf(FrameError);
  expect(outcome.ok).toBe(false);
  if (!outcome.ok) expect(outcome.error).toBe(reason);
  expect(chCloses).toEqual([reason]);
  expect(conn.closed).toBe(true);

  await server.close();
  await expectNoLeakedResources(before);
  expect(closes).toHaveLength(1);
  return { reason, received: await received, conn };
}

/** basic.deliver arguments: consumer-tag, delivery-tag, redelivered, exchange, routing-key. */
function deliver(channel: number, tag = 1): Buffer {
  return methodFrame(
    channel,
    BASIC.classId,
    BASIC.deliver,
    Buffer.concat([shortstr("ctag"), u64(tag), u8(0), shortstr(""), shortstr("q")]),
  );
}

/**
 * A field table nested `depth` deep, {a: {a: {...}}}, written straight into one buffer: each
 * level is its size (long), then key "a" (short string) and tag 'F' for the next level.
 */
function nestedTable(depth: number): Buffer {
  const LEVEL = 4 + 2 + 1;
  const buf = Buffer.alloc(depth * LEVEL + 4);
  for (let i = 0; i < depth; i++) {
    const at = i * LEVEL;
    buf.writeUInt32BE(buf.length - at - 4, at);
    buf.write("\u0001aF", at + 4, "latin1");
  }
  buf.writeUInt32BE(0, depth * LEVEL); // the innermost table is empty
  return buf;
}

describe("malformed frames", () => {
  test("a method frame too short to hold its arguments: 502 syntax-error", async () => {
    const { reason, received } = await run({
      // connection.blocked with its reason short string cut off after the length octet
      attack: (conn) =>
        conn.send(rawFrame(FRAME_METHOD, 0, Buffer.concat([u16(10), u16(60), u8(20), Buffer.from("short")]))),
    });
    expect(reason.code).toBe(502);
    expect(received).toMatchObject({ replyCode: 502 });
  });

  test("an unknown frame type: 501 frame-error", async () => {
    const { reason, received } = await run({ attack: (conn) => conn.send(rawFrame(9, 0, Buffer.alloc(4))) });
    expect(reason.code).toBe(501);
    expect(received).toMatchObject({ replyCode: 501 });
  });

  test("a bad frame-end octet: 501 frame-error", async () => {
    const { reason, received } = await run({
      attack: (conn) => conn.send(rawFrame(FRAME_METHOD, 0, Buffer.concat([u16(10), u16(61)]), 0x00)),
    });
    expect(reason.code).toBe(501);
    expect(reason.message).toMatch(/frame-end/);
    expect(received).toMatchObject({ replyCode: 501 });
  });

  test("a field table nested thousands deep: 502, no stack overflow", async () => {
    const { reason, received } = await run({
      attack: async (conn, channel) => {
        await conn.send(deliver(channel));
        // basic properties with only the headers flag (bit 13) set, the headers 5000 deep
        await conn.send(headerFrame(channel, 60, 0, 0x2000, nestedTable(5000)));
      },
    });
    expect(reason.code).toBe(502);
    expect(reason.message).toMatch(/nested/);
    expect(received).toMatchObject({ replyCode: 502 });
  });
});

describe("oversized frames", () => {
  test("larger than the negotiated frame_max: 501", async () => {
    const { reason, received, conn } = await run({
      tune: { frameMax: 4096 },
      attack: (conn, channel) => conn.send(rawFrame(FRAME_BODY, channel, Buffer.alloc(5000))),
    });
    expect(conn.frameMax).toBe(4096);
    expect(reason.code).toBe(501);
    expect(received).toMatchObject({ replyCode: 501 });
  });

  test("a header claiming 2 GB is refused from its 7 bytes, before any payload is buffered", async () => {
    const { reason, received, conn } = await run({
      // frame_max 0 on both sides ("no limit"): the inbound cap is what stands in the way.
      tune: { frameMax: 0 },
      client: { frameMax: 0, maxInboundFrameSize: 64 * 1024 },
      attack: async (conn, channel) => {
        const head = Buffer.alloc(7);
        head.writeUInt8(FRAME_BODY, 0);
        head.writeUInt16BE(channel, 1);
        head.writeUInt32BE(0x80000000, 3);
        await conn.send(head);
        // The close comes back although not one payload byte was sent: a parser that waited
        // for the payload (or tried to allocate it) would never get here.
        expect(await readClose(conn)).toMatchObject({ replyCode: 501 });
      },
    });
    expect(conn.frameMax).toBe(0);
    expect(reason.code).toBe(501);
    expect(reason.message).toMatch(/exceeds the maximum of 65536/);
    expect(received).toBe("eof"); // the close was read inside the attack
  });
});

describe("a message too large to hold", () => {
  test("a content header declaring 1 TiB: its channel closes with 311 before any body is buffered; the connection carries on", async () => {
    const before = resourceCounts();
    let channelClose: Promise<number> | undefined;
    const server = await startFakeServer(async (conn) => {
      await standardHandshake(conn);
      const channel = await acceptChannel(conn);
      await conn.expectMethod(...QUEUE_DECLARE);
      await conn.send(
        Buffer.concat([
          deliver(channel),
          headerFrame(channel, 60, 2n ** 40n),
          bodyFrame(channel, Buffer.alloc(100_000)),
        ]),
      );
      await conn.send(bodyFrame(channel, Buffer.alloc(100_000)));
      channelClose = (async () => {
        const close = await conn.expectMethod(CHANNEL.classId, 40);
        await conn.send(bodyFrame(channel, Buffer.alloc(100_000))); // still crossing the close: dropped
        await conn.send(methodFrame(channel, CHANNEL.classId, 41));
        return new Cursor(close.args).u16();
      })();
      await channelClose;
      // The connection is still good: answer the client's orderly close.
      await conn.expectMethod(C.classId, C.close);
      await conn.send(connectionCloseOkFrame());
    });
    cleanup.push(() => server.close());
    const conn = await connect({ url: server.url(), heartbeat: 0, maxMessageSize: 1024 * 1024 });
    const closes = recordCloses(conn);
    const ch = await conn.openChannel();
    const chCloses = recordCloses(ch);
    const o = await settled(ch.queueDeclare("q"));
    expect(o.ok).toBe(false);
    if (!o.ok) {
      expect(o.error).toBeInstanceOf(ChannelClosedError);
      expect((o.error as ChannelClosedError).replyCode).toBe(311);
      expect((o.error as Error).message).toMatch(/1099511627776 bytes is over maxMessageSize/);
    }
    await new Promise<void>((r) => (ch.closed && chCloses.length > 0 ? r() : ch.once("close", () => r())));
    expect(chCloses).toHaveLength(1);
    expect(await channelClose).toBe(311);
    expect(conn.closed).toBe(false);
    await conn.close();
    await server.done();
    expect(closes).toEqual([undefined]);
    await server.close();
    await expectNoLeakedResources(before);
  });
});

describe("methods out of place", () => {
  test("an unknown class id: 503 command-invalid", async () => {
    const { reason, received } = await run({ attack: (conn) => conn.send(methodFrame(0, 99, 10)) });
    expect(reason.code).toBe(503);
    expect(received).toMatchObject({ replyCode: 503 });
  });

  test("an unknown method id of a known class: 503 command-invalid", async () => {
    const { reason, received } = await run({ attack: (conn, channel) => conn.send(methodFrame(channel, 50, 99)) });
    expect(reason.code).toBe(503);
    expect(received).toMatchObject({ replyCode: 503 });
  });

  test("a method on a channel never opened: 504 channel-error", async () => {
    const { reason, received } = await run({ attack: (conn) => conn.send(deliver(7)) });
    expect(reason.code).toBe(504);
    expect(reason.message).toMatch(/channel 7/);
    expect(received).toMatchObject({ replyCode: 504 });
  });

  test("a content header with no method before it: 505 unexpected-frame", async () => {
    const { reason, received } = await run({ attack: (conn, channel) => conn.send(headerFrame(channel, 60, 3)) });
    expect(reason.code).toBe(505);
    expect(received).toMatchObject({ replyCode: 505 });
  });

  test("a body longer than its header declared: 501 frame-error", async () => {
    const { reason, received } = await run({
      attack: async (conn, channel) => {
        await conn.send(
          Buffer.concat([deliver(channel), headerFrame(channel, 60, 5), bodyFrame(channel, "ten bytes!")]),
        );
      },
    });
    expect(reason.code).toBe(501);
    expect(reason.message).toMatch(/longer than the 5/);
    expect(received).toMatchObject({ replyCode: 501 });
  });

  test("a connection.close-ok nobody asked for: 505 unexpected-frame", async () => {
    const { reason, received } = await run({ attack: (conn) => conn.send(connectionCloseOkFrame()) });
    expect(reason.code).toBe(505);
    expect(received).toMatchObject({ replyCode: 505 });
  });
});

describe("the server goes quiet or away", () => {
  test("a server that never sends connection.start: connect fails with TimeoutError", async () => {
    const before = resourceCounts();
    let serverSide: FakeConnection | undefined;
    const server = await startFakeServer(async (conn) => {
      serverSide = conn;
    });
    cleanup.push(() => server.close());
    const o = await settled(connect({ url: server.url(), connectionTimeout: 300 }));
    expect(o.ok).toBe(false);
    if (!o.ok) {
      expect(o.error).toBeInstanceOf(TimeoutError);
      expect((o.error as Error).message).toMatch(/within 300 ms/);
    }
    // The client hung up: the server sees the socket end, nothing left open on our side.
    await serverSide!.closed;
    expect(serverSide!.available).toBe(0);
    await server.close();
    await expectNoLeakedResources(before);
  });

  test("a truncated frame, then FIN: the connection is lost, typed, with what was cut", async () => {
    const before = resourceCounts();
    const server = await startFakeServer(async (conn) => {
      await standardHandshake(conn);
      const channel = await acceptChannel(conn);
      await conn.expectMethod(...QUEUE_DECLARE);
      const whole = methodFrame(channel, 50, 11, Buffer.concat([shortstr("q"), u32(0), u32(0)]));
      await conn.send(whole.subarray(0, whole.length - 4));
      conn.end();
    });
    cleanup.push(() => server.close());
    const conn = await connect({ url: server.url(), heartbeat: 0 });
    const closes = recordCloses(conn);
    const ch = await conn.openChannel();
    const o = await settled(ch.queueDeclare("q"));
    expect(o.ok).toBe(false);
    expect(closes).toHaveLength(1);
    const reason = closes[0] as ConnectionClosedError;
    expect(reason).toBeInstanceOf(ConnectionClosedError);
    expect(reason.replyCode).toBe(0);
    expect(reason.message).toMatch(/closed by the peer in the middle of a frame, \d+ bytes of it received/);
    if (!o.ok) expect(o.error).toBe(reason);
    await server.close();
    await expectNoLeakedResources(before);
  });

  test("a field table nested thousands deep in connection.start: connect fails typed; no close during the handshake", async () => {
    const before = resourceCounts();
    let received: Promise<Received> | undefined;
    const server = await startFakeServer(async (conn) => {
      const start = methodFrame(
        0,
        C.classId,
        C.start,
        Buffer.concat([u8(0), u8(9), nestedTable(5000), u32(5), Buffer.from("PLAIN"), u32(5), Buffer.from("en_US")]),
      );
      await conn.send(start);
      received = readClose(conn);
      await received;
    });
    cleanup.push(() => server.close());
    const o = await settled(connect({ url: server.url() }));
    expect(o.ok).toBe(false);
    if (!o.ok) {
      expect(o.error).toBeInstanceOf(FrameError);
      expect((o.error as FrameError).code).toBe(502);
    }
    await server.done();
    // Before connection.open-ok the spec has the client close the socket, not negotiate a close.
    expect(await received).toBe("eof");
    await server.close();
    await expectNoLeakedResources(before);
  });
});
