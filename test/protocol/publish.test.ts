/**
 * The dedicated basic.publish encoder writes exactly the bytes of the general method + content
 * encoders, for every shape of input, and fails the same way on bad input, leaving nothing.
 */
import { describe, expect, test } from "vitest";
import fc from "fast-check";
import { encodeContent, encodeMethodFrame } from "../../src/protocol/frame.js";
import { encodePublish } from "../../src/protocol/publish.js";
import type { BasicProperties } from "../../src/protocol/properties.js";
import { Writer } from "../../src/protocol/writer.js";

function general(
  channel: number,
  exchange: string,
  routingKey: string,
  mandatory: boolean,
  props: BasicProperties,
  body: Uint8Array,
  frameMax: number,
): Buffer {
  const w = new Writer(64);
  encodeMethodFrame(w, channel, { name: "basic.publish", exchange, routingKey, mandatory, immediate: false }, frameMax);
  encodeContent(w, channel, 60, props, body, frameMax);
  return Buffer.from(w.take());
}

/**
 * The two encodings are the same bytes; if not, says where they first differ. (A deep equality of
 * two 300 KB buffers compares element by element: seconds, and far more on Bun.)
 */
function expectSameBytes(actual: Buffer, expected: Buffer): void {
  if (actual.equals(expected)) return;
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  expect({ length: actual.length, from: at, bytes: actual.subarray(at, at + 16) }).toEqual({
    length: expected.length,
    from: at,
    bytes: expected.subarray(at, at + 16),
  });
}

function dedicated(
  channel: number,
  exchange: string,
  routingKey: string,
  mandatory: boolean,
  props: BasicProperties,
  body: Uint8Array,
  frameMax: number,
  slab = 64,
): Buffer {
  const w = new Writer(slab);
  encodePublish(w, channel, exchange, routingKey, mandatory, props, body, frameMax);
  return Buffer.from(w.take());
}

describe("encodePublish", () => {
  test("same bytes as the general encoders: ASCII, unicode, empty and 255-byte names; properties or none; bodies across frames", () => {
    const cases: [string, string, BasicProperties, number, number][] = [
      ["", "q", {}, 16, 131072],
      ["amq.direct", "a".repeat(255), {}, 0, 4096],
      ["logs", "", { contentType: "text/plain", deliveryMode: 2, headers: { a: 1 } }, 4096, 4096],
      ["ex-ü", "clé-€", {}, 10000, 4096],
      ["x".repeat(200), "y".repeat(85), { timestamp: new Date(1_700_000_000_000) }, 300_000, 131072],
    ];
    for (const [ex, rk, props, size, frameMax] of cases) {
      const body = Buffer.alloc(size, 7);
      for (const mandatory of [false, true]) {
        for (const channel of [1, 300, 65535]) {
          expectSameBytes(
            dedicated(channel, ex, rk, mandatory, props, body, frameMax),
            general(channel, ex, rk, mandatory, props, body, frameMax),
          );
        }
      }
    }
  });

  test("property: any names, properties and body give the general encoders' bytes", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 60 }),
        fc.string({ unit: "grapheme", maxLength: 40 }),
        fc.boolean(),
        fc.record({
          contentType: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
          priority: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
        }),
        fc.uint8Array({ maxLength: 9000 }),
        fc.integer({ min: 1, max: 65535 }),
        (ex, rk, mandatory, props, body, channel) => {
          const p: BasicProperties = {};
          if (props.contentType !== undefined) p.contentType = props.contentType;
          if (props.priority !== undefined) p.priority = props.priority;
          expectSameBytes(
            dedicated(channel, ex, rk, mandatory, p, body, 4096),
            general(channel, ex, rk, mandatory, p, body, 4096),
          );
        },
      ),
    );
  });

  test("a bad name or property throws naming it and leaves nothing written after what was there", () => {
    const w = new Writer(64);
    encodePublish(w, 1, "", "first", false, {}, Buffer.from("ok"), 4096);
    const before = Buffer.from(w.buf.subarray(0, w.pos));
    expect(() => encodePublish(w, 1, "e".repeat(256), "q", false, {}, Buffer.alloc(1), 4096)).toThrow(/exchange/);
    expect(() => encodePublish(w, 1, "", "é".repeat(200), false, {}, Buffer.alloc(1), 4096)).toThrow(/routingKey/);
    expect(() => encodePublish(w, 1, "", 42 as unknown as string, false, {}, Buffer.alloc(1), 4096)).toThrow(TypeError);
    expect(() => encodePublish(w, 1, "", "q", false, { priority: 300 }, Buffer.alloc(1), 4096)).toThrow(/priority/);
    expect(() =>
      encodePublish(w, 1, "", "q", false, { headers: { big: "x".repeat(5000) } }, Buffer.alloc(1), 4096),
    ).toThrow(/frame_max/);
    expect(Buffer.from(w.buf.subarray(0, w.pos))).toEqual(before);
  });
});
