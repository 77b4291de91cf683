/**
 * Known-answer vectors: frames written out byte by byte from the spec (4.2.3 frame layout,
 * 4.2.4 method payloads, 4.2.5 field encodings, 4.2.6 content header and body, the class and
 * method ids of the generated spec), then checked both ways: the codec must encode the value
 * to exactly these bytes, and parse these bytes to exactly the value.
 *
 * The expected bytes are worked out by hand, never by running the codec: a vector copied from
 * the encoder's output would only prove the encoder agrees with itself.
 */
import { describe, expect, it } from "vitest";
import {
  Decimal,
  decodeTable,
  encodeFrames,
  encodeTable,
  FrameType,
  Reader,
  typed,
  Writer,
  type Frame,
} from "../../src/protocol/index.js";
import { parseAll } from "./parse.js";

/** Hex with spaces, comments after "#" on each line. */
function hex(s: string): Buffer {
  const digits = s
    .split("\n")
    .map((line) => line.replace(/#.*/, ""))
    .join("")
    .replace(/\s+/g, "");
  if (!/^([0-9a-f]{2})*$/i.test(digits)) throw new Error(`bad hex vector: ${digits}`);
  return Buffer.from(digits, "hex");
}

interface Vector {
  name: string;
  frame: Frame;
  bytes: Buffer;
}

const vectors: Vector[] = [
  {
    name: "heartbeat",
    frame: { type: FrameType.Heartbeat, channel: 0 },
    bytes: hex(`
      08          # type 8: heartbeat (RabbitMQ's value; 4.2.3)
      0000        # channel 0: heartbeats belong to the connection
      00000000    # payload size 0
      ce          # frame-end
    `),
  },
  {
    name: "connection.tune-ok",
    frame: {
      type: FrameType.Method,
      channel: 0,
      method: { name: "connection.tune-ok", channelMax: 2047, frameMax: 131072, heartbeat: 60 },
    },
    bytes: hex(`
      01          # type 1: method
      0000        # channel 0
      0000000c    # payload size 12 = 4 ids + 2 + 4 + 2
      000a        # class 10 connection
      001f        # method 31 tune-ok
      07ff        # channel-max (short) 2047
      00020000    # frame-max (long) 131072
      003c        # heartbeat (short) 60 seconds
      ce          # frame-end
    `),
  },
  {
    name: "basic.publish with mandatory set",
    frame: {
      type: FrameType.Method,
      channel: 1,
      method: { name: "basic.publish", exchange: "logs", routingKey: "info", mandatory: true, immediate: false },
    },
    bytes: hex(`
      01          # method
      0001        # channel 1
      00000011    # payload size 17 = 4 + 2 + 5 + 5 + 1
      003c 0028   # class 60 basic, method 40 publish
      0000        # reserved-1 (was ticket), short
      04 6c6f6773 # exchange: shortstr length 4, "logs"
      04 696e666f # routing-key: shortstr length 4, "info"
      01          # bits, first bit lowest (4.2.5.2): mandatory = 1, immediate = 0
      ce
    `),
  },
  {
    name: "basic.deliver with a delivery tag above 2^32",
    frame: {
      type: FrameType.Method,
      channel: 2,
      method: {
        name: "basic.deliver",
        consumerTag: "ctag",
        deliveryTag: 2 ** 32 + 1,
        redelivered: true,
        exchange: "",
        routingKey: "q",
      },
    },
    bytes: hex(`
      01 0002 00000015            # method, channel 2, size 21 = 4 + 5 + 8 + 1 + 1 + 2
      003c 003c                   # class 60 basic, method 60 deliver
      04 63746167                 # consumer-tag "ctag"
      00000001 00000001           # delivery-tag (longlong, big-endian) 2^32 + 1
      01                          # redelivered = 1 (its own octet: the only bit)
      00                          # exchange "" (the default exchange)
      01 71                       # routing-key "q"
      ce
    `),
  },
  {
    name: "content header with content-type, headers, delivery-mode and timestamp",
    frame: {
      type: FrameType.Header,
      channel: 1,
      classId: 60,
      bodySize: 5,
      properties: {
        contentType: "text/plain",
        headers: { x: 1 },
        deliveryMode: 2,
        timestamp: new Date(1_700_000_000_000),
      },
    },
    bytes: hex(`
      02 0001 0000002d            # header frame, channel 1, size 45
      003c                        # class 60 basic
      0000                        # weight: always 0
      00000000 00000005           # body size (longlong) 5
      b040                        # flags: bit 15 content-type 8000 | bit 13 headers 2000 |
                                  #        bit 12 delivery-mode 1000 | bit 6 timestamp 0040
      0a 746578742f706c61696e     # content-type: shortstr "text/plain" (10 bytes)
      00000007                    # headers: table of 7 bytes
        01 78                     #   key "x"
        49 00000001               #   'I' signed 32-bit: 1 (an integer that fits int32)
      02                          # delivery-mode (octet) 2 = persistent
      00000000 6553f100           # timestamp (longlong seconds) 1700000000
      ce
    `),
  },
  {
    name: "body frame",
    frame: { type: FrameType.Body, channel: 1, payload: Buffer.from("hello") },
    bytes: hex(`
      03 0001 00000005            # body frame, channel 1, size 5
      68656c6c6f                  # "hello"
      ce
    `),
  },
  {
    name: "channel.close",
    frame: {
      type: FrameType.Method,
      channel: 7,
      method: { name: "channel.close", replyCode: 404, replyText: "NOT_FOUND", classId: 50, methodId: 10 },
    },
    bytes: hex(`
      01 0007 00000014            # method, channel 7, size 20 = 4 + 2 + 10 + 2 + 2
      0014 0028                   # class 20 channel, method 40 close
      0194                        # reply-code 404
      09 4e4f545f464f554e44       # reply-text "NOT_FOUND"
      0032 000a                   # class-id 50 queue, method-id 10 declare: what failed
      ce
    `),
  },
];

describe.each(vectors)("$name", ({ frame, bytes }) => {
  it("encodes to the hand-written bytes", () => {
    expect(encodeFrames([frame]).toString("hex")).toBe(bytes.toString("hex"));
  });
  it("parses from the hand-written bytes", () => {
    expect(parseAll(bytes)).toEqual([frame]);
  });
});

it("all the vectors back to back parse as one stream", () => {
  expect(parseAll(Buffer.concat(vectors.map((v) => v.bytes)))).toEqual(vectors.map((v) => v.frame));
});

describe("field-table vectors (RabbitMQ's tags, errata 3)", () => {
  const table = hex(`
    00000087                      # table length 135: 17 entries of key (2) + tag (1) + value
    01 74 74 01                   # "t" -> 't' boolean true
    01 62 62 fe                   # "b" -> 'b' int8 -2
    01 42 42 ff                   # "B" -> 'B' uint8 255
    01 73 73 8000                 # "s" -> 's' int16 -32768 (not a short string: errata)
    01 75 75 ffff                 # "u" -> 'u' uint16 65535
    01 49 49 ffffffff             # "I" -> 'I' int32 -1
    01 69 69 ffffffff             # "i" -> 'i' uint32 4294967295
    01 6c 6c 8000000000000000     # "l" -> 'l' int64 -2^63 (beyond 2^53: a bigint)
    01 66 66 3fc00000             # "f" -> 'f' float32 1.5
    01 64 64 400921fb54442d18     # "d" -> 'd' float64 pi
    01 44 44 02 00003039          # "D" -> 'D' decimal, scale 2, value 12345 = 123.45
    01 53 53 00000002 6869        # "S" -> 'S' long string "hi"
    01 78 78 00000003 000102      # "x" -> 'x' byte array 00 01 02
    01 41 41 00000008             # "A" -> 'A' array of 8 bytes:
      49 00000007                 #   'I' 7
      56                          #   'V' void
      74 00                       #   't' false
    01 54 54 000000006553f100     # "T" -> 'T' timestamp 1700000000 s
    01 46 46 00000007             # "F" -> 'F' nested table of 7 bytes:
      01 6b 53 00000000           #   "k" -> 'S' ""
    01 56 56                      # "V" -> 'V' void: no value bytes
  `);
  const value = {
    t: true,
    b: -2,
    B: 255,
    s: -32768,
    u: 65535,
    I: -1,
    i: 4294967295,
    l: -(2n ** 63n),
    f: 1.5,
    d: Math.PI,
    D: new Decimal(2, 12345),
    S: "hi",
    x: Buffer.from([0, 1, 2]),
    A: [7, null, false],
    T: new Date(1_700_000_000_000),
    F: { k: "" },
    V: null,
  };

  it("hand-written bytes decode to every tag's JS value", () => {
    // The length prefix must count exactly the bytes that follow it.
    expect(table.readUInt32BE(0)).toBe(table.length - 4);
    const r = new Reader(table);
    expect(decodeTable(r)).toEqual(value);
    expect(r.remaining).toBe(0);
  });

  it("the same values, tags forced where the default would differ, encode to the same bytes", () => {
    const forced = {
      ...value,
      b: typed("b", -2),
      B: typed("B", 255),
      s: typed("s", -32768),
      u: typed("u", 65535),
      i: typed("i", 4294967295),
      f: typed("f", 1.5),
      d: typed("d", Math.PI),
    };
    const w = new Writer();
    encodeTable(w, forced);
    expect(w.take().toString("hex")).toBe(table.toString("hex"));
  });

  it("default mapping of JS values: integer -> I, large integer -> l, fraction -> d, bigint -> l, Date -> T", () => {
    const w = new Writer();
    encodeTable(w, { a: 1, b: 2 ** 40, c: 0.5, d: 5n, e: new Date(1000) });
    expect(w.take().toString("hex")).toBe(
      hex(`
        00000033                    # 51 bytes: 7 + 4 * 11
        01 61 49 00000001           # 1 fits int32 -> 'I'
        01 62 6c 0000010000000000   # 2^40 -> 'l'
        01 63 64 3fe0000000000000   # 0.5 -> 'd'
        01 64 6c 0000000000000005   # 5n -> 'l'
        01 65 54 0000000000000001   # Date(1000 ms) -> 'T' 1 second
      `).toString("hex"),
    );
  });
});
