/**
 * Bad input, case by case. Encoding a bad user value is a TypeError or RangeError naming the
 * field, thrown before any byte reaches the output; decoding a bad peer frame is a FrameError
 * with the reply code the connection must close with (spec 4.2.3, 4.2.6 and the constants).
 */
import { describe, expect, it } from "vitest";
import {
  Decimal,
  decodeMethodBytes,
  decodeProperties,
  decodeTable,
  encodeContent,
  encodeFrames,
  encodeHeaderFrame,
  encodeMethodFrame,
  encodeTable,
  FrameError,
  FrameParser,
  FrameType,
  Reader,
  typed,
  Writer,
  type Frame,
  type Method,
} from "../../src/protocol/index.js";
import { rawFrame } from "../helpers/amqp-bytes.js";
import { parseAll } from "./parse.js";

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (e) {
    return e;
  }
  throw new Error("expected an error, none was thrown");
}

function expectFrameError(run: () => unknown, code: number, message: RegExp): void {
  const e = caught(run);
  expect(e).toBeInstanceOf(FrameError);
  expect((e as FrameError).code).toBe(code);
  expect((e as FrameError).message).toMatch(message);
}

const declare = (queue: unknown): Method =>
  ({
    name: "queue.declare",
    queue,
    passive: false,
    durable: false,
    exclusive: false,
    autoDelete: false,
    noWait: false,
    arguments: {},
  }) as unknown as Method;

// ---------------------------------------------------------------------------------------------

describe("encoding a bad user value", () => {
  /** Encode onto a writer that already holds one good frame: the bad one must leave no trace. */
  function encodeAfterGoodFrame(encode: (w: Writer) => void): { error: unknown; bytes: Buffer } {
    const w = new Writer();
    encodeMethodFrame(w, 1, { name: "basic.qos", prefetchSize: 0, prefetchCount: 10, global: false });
    const error = caught(() => encode(w));
    // And the writer still works: the next frame follows the good one directly.
    encodeMethodFrame(w, 1, { name: "tx.select" });
    return { error, bytes: Buffer.from(w.take()) };
  }
  const good = encodeFrames([
    {
      type: FrameType.Method,
      channel: 1,
      method: { name: "basic.qos", prefetchSize: 0, prefetchCount: 10, global: false },
    },
    { type: FrameType.Method, channel: 1, method: { name: "tx.select" } },
  ]);

  it.each([
    ["256 ASCII bytes", "q".repeat(256)],
    ["128 two-byte characters (256 bytes)", "é".repeat(128)],
    ["64 four-byte characters (256 bytes)", "😀".repeat(64)],
    ["a megabyte", "x".repeat(1 << 20)],
  ])("a short string over 255 bytes (%s) is a RangeError naming the field, nothing written", (_label, queue) => {
    const { error, bytes } = encodeAfterGoodFrame((w) => encodeMethodFrame(w, 1, declare(queue)));
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/queue\.declare queue/);
    expect((error as Error).message).toMatch(/255/);
    expect(bytes.toString("hex")).toBe(good.toString("hex"));
  });

  it.each(["basic.nothing", "toString", "constructor", "__proto__"])(
    "an unknown method name (%s) is a TypeError, nothing written",
    (name) => {
      const { error, bytes } = encodeAfterGoodFrame((w) => encodeMethodFrame(w, 1, { name } as unknown as Method));
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toBe(`unknown method ${name}`);
      expect(bytes.toString("hex")).toBe(good.toString("hex"));
    },
  );

  it("255 bytes exactly is accepted", () => {
    const w = new Writer();
    encodeMethodFrame(w, 1, declare("é".repeat(127) + "x"));
    expect(parseAll(Buffer.from(w.take()))).toMatchObject([{ method: { queue: "é".repeat(127) + "x" } }]);
  });

  it("a non-string where a string belongs is a TypeError naming the field", () => {
    const { error, bytes } = encodeAfterGoodFrame((w) => encodeMethodFrame(w, 1, declare(42)));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/queue\.declare queue/);
    expect(bytes.toString("hex")).toBe(good.toString("hex"));
  });

  it.each([
    [
      "a short above 65535",
      { name: "basic.qos", prefetchSize: 0, prefetchCount: 70000, global: false },
      /basic\.qos prefetchCount/,
    ],
    [
      "a negative long",
      { name: "basic.qos", prefetchSize: -1, prefetchCount: 1, global: false },
      /basic\.qos prefetchSize/,
    ],
    [
      "a fractional short",
      { name: "connection.tune-ok", channelMax: 1.5, frameMax: 4096, heartbeat: 0 },
      /connection\.tune-ok channelMax/,
    ],
    [
      "a longlong beyond 2^53 as a number",
      { name: "basic.ack", deliveryTag: 2 ** 53, multiple: false },
      /basic\.ack deliveryTag.*bigint/,
    ],
    ["a negative longlong", { name: "basic.ack", deliveryTag: -1, multiple: false }, /basic\.ack deliveryTag/],
  ])("%s is a RangeError naming the field, nothing written", (_label, method, field) => {
    const { error, bytes } = encodeAfterGoodFrame((w) => encodeMethodFrame(w, 1, method as Method));
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(field);
    expect(bytes.toString("hex")).toBe(good.toString("hex"));
  });

  it.each([
    ["a header key over 255 bytes", { headers: { ["k".repeat(256)]: 1 } }, RangeError, /headers key/],
    [
      "a header key of 200 units and 400 bytes",
      { headers: { ["é".repeat(200)]: 1 } },
      RangeError,
      /headers key is 400 bytes/,
    ],
    [
      "an array element out of its forced tag's range",
      { headers: { list: [1, typed("B", 300)] } },
      RangeError,
      /headers\.list\[1\] must be in 0\.\.255/,
    ],
    [
      "a Decimal whose value is beyond 32 bits",
      { headers: { d: new Decimal(2, 2 ** 40) } },
      RangeError,
      /headers\.d\.value/,
    ],
    ["a bigint beyond 64 bits", { headers: { big: 2n ** 64n } }, RangeError, /headers\.big does not fit/],
    ["a value out of its forced tag's range", { headers: { a: { b: typed("b", 200) } } }, RangeError, /headers\.a\.b/],
    ["a non-integer forced to an integer tag", { headers: { n: typed("I", 1.5) } }, TypeError, /headers\.n/],
    ["a function in the headers", { headers: { f: (() => 1) as never } }, TypeError, /field table/],
    [
      "a cyclic table",
      (() => {
        const a: Record<string, unknown> = {};
        a.self = a;
        return { headers: a };
      })(),
      RangeError,
      /nested more than/,
    ],
    ["a content-type over 255 bytes", { contentType: "t".repeat(300) }, RangeError, /contentType/],
    ["a delivery-mode above 255", { deliveryMode: 256 }, RangeError, /deliveryMode/],
    ["a timestamp that is not a Date", { timestamp: 5 as never }, TypeError, /timestamp/],
    ["a Date before 1970", { timestamp: new Date(-1000) }, TypeError, /timestamp/],
  ])("properties: %s is refused, nothing written", (_label, properties, type, field) => {
    const { error, bytes } = encodeAfterGoodFrame((w) =>
      encodeContent(w, 1, 60, properties as never, Buffer.from("body"), 4096),
    );
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(field);
    expect(bytes.toString("hex")).toBe(good.toString("hex"));
  });

  it("a frame that would exceed frame_max is refused, nothing written", () => {
    const big = { x: "y".repeat(5000) };
    const { error, bytes } = encodeAfterGoodFrame((w) =>
      encodeMethodFrame(w, 1, { ...declare("q"), arguments: big } as Method, 4096),
    );
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/frame_max 4096/);
    expect(bytes.toString("hex")).toBe(good.toString("hex"));
  });

  it("a bad channel number is a RangeError", () => {
    expect(caught(() => encodeMethodFrame(new Writer(), 65536, { name: "tx.select" }))).toBeInstanceOf(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------

describe("decoding bad bytes from the peer", () => {
  it("a malformed table: length running past the payload is 502", () => {
    expectFrameError(() => decodeTable(new Reader(Buffer.from([0, 0, 0, 10, 1, 0x61, 0x74]))), 502, /truncated/);
  });

  it("a malformed table: a value running past its table's own length is 502, even with bytes after the table", () => {
    // Table says 7 bytes: key "a" (2), tag 'I' (1), then 4 value bytes -- but only 3 are inside.
    const b = Buffer.from([0, 0, 0, 6, 1, 0x61, 0x49, 0, 0, 0, /* outside the table: */ 1, 0xff, 0xff]);
    expectFrameError(() => decodeTable(new Reader(b)), 502, /truncated/);
  });

  it("a malformed table: an unknown type tag is 502", () => {
    expectFrameError(
      () => decodeTable(new Reader(Buffer.from([0, 0, 0, 3, 1, 0x61, 0x51]))),
      502,
      /unknown field-table type tag 0x51/,
    );
  });

  it("a malformed table inside a method frame, through the parser, is 502", () => {
    // queue.declare whose arguments table claims 100 bytes: ids, reserved short, "" queue, bits, table
    const payload = Buffer.from([0, 50, 0, 10, 0, 0, 0, 0, 0, 0, 0, 100, 1]);
    expectFrameError(() => parseAll(rawFrame(1, 1, payload)), 502, /truncated/);
  });

  it("a truncated method payload (fields missing) is 502", () => {
    // connection.tune with only channel-max
    expectFrameError(() => parseAll(rawFrame(1, 0, Buffer.from([0, 10, 0, 30, 0, 1]))), 502, /truncated/);
  });

  it("a truncated frame in the stream is not an error yet: the parser waits, holding only what came", () => {
    const whole = encodeFrames([{ type: FrameType.Body, channel: 1, payload: Buffer.from("abcdef") }]);
    const p = new FrameParser(4096);
    p.push(whole.subarray(0, whole.length - 1));
    expect(p.next()).toBeUndefined();
    expect(p.buffered).toBe(whole.length - 1);
    p.push(whole.subarray(whole.length - 1));
    expect(p.next()).toMatchObject({ type: FrameType.Body, payload: Buffer.from("abcdef") });
  });

  it("an unknown class id is 503", () => {
    expectFrameError(() => decodeMethodBytes(Buffer.from([0, 99, 0, 10])), 503, /class 99, method 10/);
  });

  it("an unknown method id in a known class is 503", () => {
    expectFrameError(() => decodeMethodBytes(Buffer.from([0, 60, 0, 99])), 503, /class 60, method 99/);
  });

  it("an unknown frame type is 501", () => {
    expectFrameError(() => parseAll(rawFrame(4, 0, Buffer.alloc(0))), 501, /unknown frame type 4/);
  });

  it("a heartbeat on a channel other than 0 is 501", () => {
    expectFrameError(() => parseAll(rawFrame(8, 3, Buffer.alloc(0))), 501, /heartbeat/);
  });

  it.each([0x00, 0xcd, 0xcf, 0xff])("a frame-end octet of 0x%s is 501", (end) => {
    expectFrameError(() => parseAll(rawFrame(3, 1, Buffer.from("x"), end)), 501, /frame-end/);
  });

  it("a frame over frame_max is refused from its 7 header bytes, before any payload is buffered", () => {
    const p = new FrameParser(4096);
    const header = Buffer.from([3, 0, 1, 0x7f, 0xff, 0xff, 0xff]); // body frame declaring ~2 GiB
    p.push(header);
    expectFrameError(() => p.next(), 501, /exceeds the maximum of 4096/);
    expect(p.buffered).toBe(7);
  });

  it("frame_max counts the whole frame: 4096 allows a 4088-byte payload and no more", () => {
    const ok = rawFrame(3, 1, Buffer.alloc(4088));
    expect(parseAll(ok, 4096)).toHaveLength(1);
    expectFrameError(() => parseAll(rawFrame(3, 1, Buffer.alloc(4089)), 4096), 501, /exceeds/);
  });

  it("a header frame's property flags with the undefined bit 1 set is 502", () => {
    expectFrameError(() => decodeProperties(new Reader(Buffer.from([0, 2]))), 502, /bit 1/);
  });

  it("a longlong beyond 2^53 where a number is expected is refused (502), never rounded", () => {
    // basic.ack with delivery tag 2^53 + 1
    const b = Buffer.from([0, 60, 0, 80, 0, 0x20, 0, 0, 0, 0, 0, 1, 0]);
    expectFrameError(() => decodeMethodBytes(b), 502, /2\^53/);
  });

  it("a content-header timestamp beyond a Date's range is refused (502), not an Invalid Date", () => {
    // flags: timestamp (bit 6), then 2^50 seconds: a safe integer, but year 35 million
    const b = Buffer.from([0x00, 0x40, 0, 0x04, 0, 0, 0, 0, 0, 0]);
    expectFrameError(() => decodeProperties(new Reader(b)), 502, /timestamp/);
  });
});

// ---------------------------------------------------------------------------------------------

describe("64-bit values", () => {
  function tableRoundTrip(v: unknown): unknown {
    const w = new Writer();
    encodeTable(w, { v: v as never });
    return decodeTable(new Reader(w.take())).v;
  }

  it("bigint in, bigint out, beyond 2^53, in both directions of the signed range", () => {
    for (const v of [2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), -(2n ** 53n) - 1n])
      expect(tableRoundTrip(v)).toBe(v);
  });

  it("a bigint outside int64 is a RangeError for tag l", () => {
    expect(caught(() => tableRoundTrip(2n ** 63n))).toBeInstanceOf(RangeError);
  });

  it("an integer number beyond 2^53 keeps its exact value (as a double, which holds it exactly)", () => {
    for (const v of [2 ** 60, -(2 ** 70), Number.MAX_VALUE]) expect(tableRoundTrip(v)).toBe(v);
    // forced to l it is written exactly too, and comes back as the bigint of that value
    expect(tableRoundTrip(typed("l", 2 ** 60))).toBe(2n ** 60n);
  });

  it("method longlong fields accept a bigint and write all 64 bits", () => {
    const w = new Writer();
    encodeMethodFrame(w, 1, { name: "basic.ack", deliveryTag: (2n ** 64n - 1n) as never, multiple: true });
    expect(w.take().subarray(11, 19).toString("hex")).toBe("ffffffffffffffff");
  });

  it("the content header's body size is 64-bit: 2^40 + 5 is written in 8 bytes and read back", () => {
    const w = new Writer();
    encodeHeaderFrame(w, 1, 60, 2 ** 40 + 5, {});
    const bytes = Buffer.from(w.take());
    expect(bytes.subarray(7 + 4, 7 + 12).toString("hex")).toBe("0000010000000005");
    expect(parseAll(bytes)).toEqual([
      { type: FrameType.Header, channel: 1, classId: 60, bodySize: 2 ** 40 + 5, properties: {} },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("content bodies and frame_max", () => {
  function bodyFrames(size: number, frameMax: number): Frame[] {
    const w = new Writer();
    const body = Buffer.from(Array.from({ length: size }, (_, i) => i & 0xff));
    encodeContent(w, 5, 60, { contentType: "a/b" }, body, frameMax);
    const frames = parseAll(Buffer.from(w.take()), frameMax || 1 << 20);
    expect(frames[0]).toMatchObject({ type: FrameType.Header, bodySize: size });
    const bodies = frames.slice(1);
    expect(Buffer.concat(bodies.map((f) => (f as { payload: Buffer }).payload))).toEqual(body);
    return bodies;
  }

  it("a body larger than frame_max - 8 is split across several body frames, each within frame_max", () => {
    const bodies = bodyFrames(10_000, 4096);
    expect(bodies.map((f) => (f as { payload: Buffer }).payload.length)).toEqual([4088, 4088, 1824]);
    expect(bodies.every((f) => f.channel === 5 && f.type === FrameType.Body)).toBe(true);
  });

  it("a body of exactly frame_max - 8 is one frame; one byte more is two", () => {
    expect(bodyFrames(4088, 4096)).toHaveLength(1);
    expect(bodyFrames(4089, 4096)).toHaveLength(2);
  });

  it("an empty body has a header and no body frame (4.2.6.2)", () => {
    expect(bodyFrames(0, 4096)).toHaveLength(0);
  });

  it("frame_max 0 (no limit) sends any body as one frame", () => {
    expect(bodyFrames(20_000, 0)).toHaveLength(1);
  });
});
