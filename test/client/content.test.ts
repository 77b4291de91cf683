/**
 * Content through the broker: all 14 basic properties and headers of every field type (the tags
 * RabbitMQ uses, its errata to 0-9-1) round-tripped, byte for byte where the broker leaves them
 * alone; large bodies split by frame_max (10 MiB across many frames), the empty body, and a long
 * stream of distinct bodies of every size arriving intact; the frames of one publish leaving
 * contiguously on the wire; and every frame on the wire also published on the
 * "warren:frame:in" / "warren:frame:out" diagnostics channels.
 *
 * The wire is watched through connect's `transport` option: a plain TCP socket to the broker
 * whose reads and writes are recorded, then cut into frames by the test's own parser
 * (test/helpers/amqp-bytes.ts, independent of src/protocol).
 */
import { randomBytes } from "node:crypto";
import diagnostics from "node:diagnostics_channel";
import net from "node:net";
import { describe, expect, test } from "vitest";
import { Decimal, connect, typed, type Connection, type FrameMessage, type Message } from "../../src/index.js";
import { brokerAddress, getBrokerUrl } from "../helpers/broker.js";
import { parseFrames, type RawFrame } from "../helpers/amqp-bytes.js";
import { brokerAtLeast, take, useConnections } from "./util.js";

const open = useConnections();
const FRAME_METHOD = 1;
const FRAME_HEADER = 2;
const FRAME_BODY = 3;

interface Wire {
  conn: Connection;
  /** Frames the client wrote (after the protocol header) and read, as parsed from the raw bytes. */
  out(): RawFrame[];
  in(): RawFrame[];
}

/** A connection whose socket's bytes are recorded both ways. */
async function wiredConnection(options: { frameMax?: number } = {}): Promise<Wire> {
  const url = await getBrokerUrl();
  const written: Buffer[] = [];
  const read: Buffer[] = [];
  const conn = await connect({
    url,
    heartbeat: 0,
    ...options,
    transport: () => {
      const s = net.connect(brokerAddress(url));
      s.on("data", (d: Buffer) => read.push(d));
      const write = s.write.bind(s) as (...a: unknown[]) => boolean;
      s.write = ((chunk: Uint8Array, ...rest: unknown[]) => {
        written.push(Buffer.from(chunk));
        return write(chunk, ...rest);
      }) as typeof s.write;
      return s;
    },
  });
  return {
    conn,
    out: () => parseFrames(Buffer.concat(written).subarray(8)).frames,
    in: () => parseFrames(Buffer.concat(read)).frames,
  };
}

/** Property flags and property list of a content header payload (after class, weight, body size). */
function headerProperties(f: RawFrame): Buffer {
  return f.payload.subarray(12);
}

describe("properties and headers", () => {
  test("all 14 basic properties round-trip through the broker", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const t = take(1);
    await ch.consume(queue, t.onMessage, { noAck: true });
    const timestamp = new Date(Math.floor(Date.now() / 1000) * 1000);
    const props = {
      contentType: "application/json",
      contentEncoding: "gzip",
      headers: { h: "v" },
      deliveryMode: 2,
      priority: 7,
      correlationId: "corr-1",
      replyTo: "reply.here",
      expiration: "60000",
      messageId: "msg-1",
      timestamp,
      type: "order.created",
      userId: new URL(await getBrokerUrl()).username || "guest", // RabbitMQ refuses a user-id other than the connection's
      appId: "warren-tests",
      clusterId: "cluster-7",
    };
    await ch.publish("", queue, "{}", props);
    const [m] = (await t.done) as [Message];
    expect(m.properties).toEqual(props);
  });

  test("headers of every field type round-trip, and the broker passes the header frame through byte for byte", async () => {
    const wire = await wiredConnection();
    const ch = await wire.conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const t = take(1);
    await ch.consume(queue, t.onMessage, { noAck: true });
    const when = new Date(Date.UTC(2024, 1, 29, 12, 0, 0));
    const headers = {
      bool: true, // t
      int8: typed("b", -128), // b
      uint8: typed("B", 255), // B
      int16: typed("s", -32768), // s
      uint16: typed("u", 65535), // u
      int32: -2147483648, // I
      uint32: typed("i", 4294967295), // i
      int64: 2n ** 62n, // l
      safe64: typed("l", 5), // l, small
      float: typed("f", 1.5), // f
      double: 0.1, // d
      decimal: new Decimal(2, 12345), // D
      string: "ünïcødé ✓", // S
      bytes: Buffer.from([0, 1, 2, 254, 255]), // x
      array: [1, "two", [3], { four: 4 }, null], // A
      timestamp: when, // T
      table: { nested: { deeper: "yes" } }, // F
      void: null, // V
    };
    await ch.publish("", queue, "h", { headers });
    const [m] = (await t.done) as [Message];
    expect(m.properties.headers).toEqual({
      bool: true,
      int8: -128,
      uint8: 255,
      int16: -32768,
      uint16: 65535,
      int32: -2147483648,
      uint32: 4294967295,
      int64: 2n ** 62n,
      safe64: 5,
      float: 1.5,
      double: 0.1,
      decimal: new Decimal(2, 12345),
      string: "ünïcødé ✓",
      bytes: Buffer.from([0, 1, 2, 254, 255]),
      array: [1, "two", [3], { four: 4 }, null],
      timestamp: when,
      table: { nested: { deeper: "yes" } },
      void: null,
    });
    // RabbitMQ 3.x keeps a classic queue's content header as it was published (it re-encodes
    // only when it must add to it, e.g. x-death on dead-lettering), so every tag -- the
    // unsigned b/B/u/i ones included -- comes back as sent.
    const sent = wire.out().filter((f) => f.type === FRAME_HEADER && f.channel === ch.id);
    const got = wire.in().filter((f) => f.type === FRAME_HEADER && f.channel === ch.id);
    expect(sent.length).toBe(1);
    expect(got.length).toBe(1);
    // RabbitMQ 4.x keeps messages in its own container format and encodes the header anew on
    // delivery: the values come back equal (above), the bytes need not.
    if (!brokerAtLeast(wire.conn, 4, 0))
      expect(headerProperties(got[0]!).equals(headerProperties(sent[0]!))).toBe(true);
    await wire.conn.close();
  });
});

/** The type tag of each top-level entry of a field table starting at `buf[0]` (its long length first). */
function tableTags(buf: Buffer): Record<string, string> {
  const fixed: Record<string, number> = {
    t: 1,
    b: 1,
    B: 1,
    s: 2,
    u: 2,
    I: 4,
    i: 4,
    l: 8,
    f: 4,
    d: 8,
    D: 5,
    T: 8,
    V: 0,
  };
  const end = 4 + buf.readUInt32BE(0);
  const tags: Record<string, string> = {};
  for (let at = 4; at < end;) {
    const keyLength = buf[at]!;
    const key = buf.toString("utf8", at + 1, at + 1 + keyLength);
    at += 1 + keyLength;
    const tag = String.fromCharCode(buf[at]!);
    at += 1;
    tags[key] = tag;
    at += tag in fixed ? fixed[tag]! : 4 + buf.readUInt32BE(at); // S x A F: a long length, then bytes
  }
  return tags;
}

describe("what the broker changes in headers", () => {
  test("re-encoded by dead-lettering (x-death added), every field type keeps its tag and value", async () => {
    const wire = await wiredConnection();
    const ch = await wire.conn.openChannel();
    const { queue: dead } = await ch.queueDeclare("", { exclusive: true });
    // Expires at once into the default exchange, routed to `dead`.
    const { queue: source } = await ch.queueDeclare("", {
      exclusive: true,
      arguments: { "x-message-ttl": 0, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead },
    });
    const headers = {
      b: typed("b", -5),
      B: typed("B", 200),
      s: typed("s", -300),
      u: typed("u", 60000),
      I: -70000,
      i: typed("i", 3000000000),
      l: typed("l", 7),
      f: typed("f", 0.5),
      d: 0.25,
      D: new Decimal(1, 5),
      S: "s",
      x: Buffer.from([1]),
      A: [1],
      T: new Date(0),
      F: { k: "v" },
      V: null,
      t: false,
    };
    const t = take(1);
    await ch.consume(dead, t.onMessage, { noAck: true });
    await ch.publish("", source, "dl", { headers });
    const [m] = (await t.done) as [Message];
    expect(m.properties.headers).toMatchObject({
      b: -5,
      B: 200,
      s: -300,
      u: 60000,
      I: -70000,
      i: 3000000000,
      l: 7,
      f: 0.5,
      d: 0.25,
      D: new Decimal(1, 5),
      S: "s",
      x: Buffer.from([1]),
      A: [1],
      T: new Date(0),
      F: { k: "v" },
      V: null,
      t: false,
    });
    expect(m.properties.headers).toHaveProperty("x-death");
    const got = wire.in().filter((f) => f.type === FRAME_HEADER && f.channel === ch.id);
    expect(got.length).toBe(1);
    // Only the headers property is set: the property list is the headers table itself.
    const tags = tableTags(headerProperties(got[0]!).subarray(2));
    for (const tag of Object.keys(headers)) expect(tags[tag], `tag of ${tag}`).toBe(tag);
    expect(tags["x-death"]).toBe("A");
    await wire.conn.close();
  });
});

describe("bodies", () => {
  test("10 MiB round-trips, split into frame_max-sized body frames both ways", async () => {
    const wire = await wiredConnection();
    const ch = await wire.conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const body = randomBytes(10 * 1024 * 1024);
    const t = take(1);
    await ch.consume(queue, t.onMessage, { noAck: true });
    await ch.publish("", queue, body);
    const [m] = (await t.done) as [Message];
    expect(m.body.length).toBe(body.length);
    expect(m.body.equals(body)).toBe(true);
    const perFrame = wire.conn.frameMax - 8;
    const expectedFrames = Math.ceil(body.length / perFrame);
    const outBodies = wire.out().filter((f) => f.type === FRAME_BODY && f.channel === ch.id);
    const inBodies = wire.in().filter((f) => f.type === FRAME_BODY && f.channel === ch.id);
    expect(outBodies.length).toBe(expectedFrames);
    expect(inBodies.length).toBe(expectedFrames);
    expect(Math.max(...outBodies.map((f) => f.payload.length))).toBe(perFrame);
    await wire.conn.close();
  });

  test("an empty body: a header declaring 0 and no body frame, delivered as an empty Buffer", async () => {
    const wire = await wiredConnection();
    const ch = await wire.conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const t = take(1);
    await ch.consume(queue, t.onMessage, { noAck: true });
    await ch.publish("", queue, Buffer.alloc(0), { contentType: "text/plain" });
    const [m] = (await t.done) as [Message];
    expect(Buffer.isBuffer(m.body)).toBe(true);
    expect(m.body.length).toBe(0);
    expect(m.properties.contentType).toBe("text/plain");
    const header = wire.out().find((f) => f.type === FRAME_HEADER && f.channel === ch.id)!;
    expect(header.payload.readBigUInt64BE(4)).toBe(0n);
    expect(wire.out().some((f) => f.type === FRAME_BODY && f.channel === ch.id)).toBe(false);
    await wire.conn.close();
  });

  test("a stream of distinct bodies from 0 B to 200 KiB, awaited and not, all arrive byte for byte over plain TCP, where the publish slabs are reused", async () => {
    const conn = await open(); // no transport, no TLS: the writer reuses its slabs (Connection.writeOut)
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const bodies = Array.from({ length: 1500 }, (_, i) => {
      const size = i % 100 === 0 ? 200 * 1024 : (i * 7919) % 70_000; // most within a slab, some across, a few larger
      return randomBytes(size);
    });
    const t = take(bodies.length);
    await ch.consume(queue, t.onMessage, { noAck: true });
    for (let i = 0; i < bodies.length; i++) {
      const p = ch.publish("", queue, bodies[i]!);
      if (i % 3 === 0) await p; // some turns write one publish, others many
    }
    const got = await t.done;
    expect(got.map((m) => m.body.length)).toEqual(bodies.map((b) => b.length));
    const wrong = got.flatMap((m, i) => (m.body.equals(bodies[i]!) ? [] : [i]));
    expect(wrong).toEqual([]);
  });
});

describe("frames on the wire", () => {
  test("the frames of one publish leave contiguously, with large publishes on two channels and two on one channel interleaved in time", async () => {
    const wire = await wiredConnection({ frameMax: 8192 });
    const a = await wire.conn.openChannel();
    const b = await wire.conn.openChannel();
    const { queue } = await a.queueDeclare("", { exclusive: true });
    const big = (n: number) => Buffer.alloc(300_000, n);
    // Issued in one turn: a, b, a, b -- many body frames each.
    await Promise.all([
      a.publish("", queue, big(1)),
      b.publish("", queue, big(2)),
      a.publish("", queue, big(3)),
      b.publish("", queue, big(4)),
    ]);
    await a.queueDeclare(queue, { passive: true }); // the broker has read them all
    const frames = wire.out().filter((f) => f.channel === a.id || f.channel === b.id);
    // Cut the sequence into publishes: a basic.publish method (60, 40) starts one; every
    // header and body frame after it must be on the same channel until the body is complete.
    const publishes: { channel: number; bytes: number; first: number }[] = [];
    let current: { channel: number; bytes: number; size: number; first: number } | undefined;
    for (const f of frames) {
      if (current !== undefined) {
        expect(f.channel, "a frame of another channel in the middle of a publish").toBe(current.channel);
        expect(f.type).not.toBe(FRAME_METHOD);
        if (f.type === FRAME_HEADER) current.size = Number(f.payload.readBigUInt64BE(4));
        else current.bytes += f.payload.length;
        if (current.size >= 0 && current.bytes === current.size) {
          publishes.push(current);
          current = undefined;
        }
        continue;
      }
      if (f.type === FRAME_METHOD && f.payload.readUInt16BE(0) === 60 && f.payload.readUInt16BE(2) === 40)
        current = { channel: f.channel, bytes: 0, size: -1, first: f.payload.length };
    }
    expect(current).toBeUndefined();
    expect(publishes.map((p) => [p.channel, p.bytes])).toEqual([
      [a.id, 300_000],
      [b.id, 300_000],
      [a.id, 300_000],
      [b.id, 300_000],
    ]);
    const got: number[] = [];
    for (let m = await a.get(queue, { noAck: true }); m; m = await a.get(queue, { noAck: true })) got.push(m.body[0]!);
    // RabbitMQ keeps order per channel only (each channel is its own process in the broker).
    expect([...got].sort()).toEqual([1, 2, 3, 4]);
    expect(got.filter((b) => b % 2 === 1)).toEqual([1, 3]);
    expect(got.filter((b) => b % 2 === 0)).toEqual([2, 4]);
    await wire.conn.close();
  });

  test("every frame on the wire, in and out, is published on warren:frame:in / warren:frame:out", async () => {
    const traced: Record<"in" | "out", FrameMessage[]> = { in: [], out: [] };
    const onIn = (m: unknown) => traced.in.push(m as FrameMessage);
    const onOut = (m: unknown) => traced.out.push(m as FrameMessage);
    diagnostics.subscribe("warren:frame:in", onIn);
    diagnostics.subscribe("warren:frame:out", onOut);
    try {
      const wire = await wiredConnection({ frameMax: 8192 });
      const ch = await wire.conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      await ch.confirmSelect();
      await ch.publish("", queue, Buffer.alloc(10_000, 1), { headers: { a: 1 } });
      await ch.publish("", queue, "");
      const t = take(2);
      await ch.consume(queue, t.onMessage);
      for (const m of await t.done) ch.ack(m);
      await ch.get(queue);
      await ch.close();
      await wire.conn.close();
      const mine = (dir: "in" | "out") =>
        traced[dir].filter((m) => m.connection === wire.conn).map((m) => `${m.frame.type}/${m.channel}`);
      const onWire = (frames: RawFrame[]) => frames.map((f) => `${f.type}/${f.channel}`);
      expect(mine("out")).toEqual(onWire(wire.out()));
      expect(mine("in")).toEqual(onWire(wire.in()));
      expect(mine("out").filter((f) => f.startsWith("3/")).length).toBe(2); // 10,000 bytes at 8184 per frame
    } finally {
      diagnostics.unsubscribe("warren:frame:in", onIn);
      diagnostics.unsubscribe("warren:frame:out", onOut);
    }
  });
});
