/**
 * Property tests: whatever the encoder accepts, the decoder gives back exactly (under the
 * value mapping documented in src/protocol/table.ts). Every method in METHODS, every
 * combination of the 14 basic properties, arbitrary nested field tables and arrays.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeMethod,
  decodeProperties,
  decodeTable,
  encodeFrames,
  encodeMethod,
  encodeProperties,
  encodeTable,
  FrameType,
  PROPERTY_NAMES,
  Reader,
  Writer,
  type BasicProperties,
} from "../../src/protocol/index.js";
import { parseAll } from "./parse.js";
import {
  anyPropertiesPair,
  fieldTablePair,
  fieldValuePair,
  methodNames,
  methodPair,
  propertiesPair,
  tableOf,
} from "./arbitraries.js";

describe("every method round-trips with arbitrary arguments", () => {
  it("covers every method in METHODS", () => {
    // Guards the loop below against an empty or filtered list.
    expect(methodNames.length).toBeGreaterThanOrEqual(60);
  });

  it.each(methodNames)("%s", (name) => {
    fc.assert(
      fc.property(methodPair(name), fc.integer({ min: 0, max: 0xffff }), ([input, expected], channel) => {
        // Bare payload, read back to its last byte ...
        const w = new Writer();
        encodeMethod(w, input);
        const r = new Reader(w.take());
        expect(decodeMethod(r)).toEqual(expected);
        expect(r.remaining).toBe(0);
        // ... and inside a frame, through the stream parser.
        const frames = parseAll(encodeFrames([{ type: FrameType.Method, channel, method: input }]));
        expect(frames).toEqual([{ type: FrameType.Method, channel, method: expected }]);
      }),
      { numRuns: 60 },
    );
  });
});

describe("basic content properties", () => {
  it("all 2^14 combinations of present properties round-trip, each with its flag bit", () => {
    // Exhaustive over the flags word. Values: 64 random full sets, cycled through, of which
    // each combination keeps the properties its mask selects.
    const full = fc.sample(propertiesPair((1 << 14) - 1), { numRuns: 64, seed: 14 });
    const pick = (props: BasicProperties, mask: number): BasicProperties =>
      Object.fromEntries(PROPERTY_NAMES.filter((_, i) => mask & (1 << (13 - i))).map((n) => [n, props[n]]));
    for (let mask = 0; mask < 1 << 14; mask++) {
      const [fullInput, fullExpected] = full[mask % full.length]!;
      const input = pick(fullInput, mask);
      const expected = pick(fullExpected, mask);
      const w = new Writer();
      encodeProperties(w, input);
      const bytes = w.take();
      // Bit 15 is the first property (4.2.6.1): our mask shifted up past bits 1 and 0.
      expect(bytes.readUInt16BE(0), `flags for mask ${mask}`).toBe(mask << 2);
      const r = new Reader(bytes);
      expect(decodeProperties(r)).toEqual(expected);
      expect(r.remaining).toBe(0);
    }
  });

  it("arbitrary properties round-trip in a content header frame, with any body size", () => {
    fc.assert(
      fc.property(anyPropertiesPair, fc.maxSafeInteger().map(Math.abs), ([input, expected], bodySize) => {
        const frames = parseAll(
          encodeFrames([{ type: FrameType.Header, channel: 1, classId: 60, bodySize, properties: input }]),
        );
        expect(frames).toEqual([{ type: FrameType.Header, channel: 1, classId: 60, bodySize, properties: expected }]);
      }),
      { numRuns: 300 },
    );
  });

  it("a property set to undefined is absent, not sent", () => {
    const props: BasicProperties = Object.fromEntries(PROPERTY_NAMES.map((n) => [n, undefined]));
    const w = new Writer();
    encodeProperties(w, props);
    expect([...w.take()]).toEqual([0, 0]);
  });
});

describe("field tables and arrays", () => {
  it("arbitrary nested tables round-trip exactly", () => {
    fc.assert(
      fc.property(fieldTablePair, ([input, expected]) => {
        const w = new Writer();
        encodeTable(w, input);
        const r = new Reader(w.take());
        const decoded = decodeTable(r);
        expect(decoded).toEqual(expected);
        expect(Object.keys(decoded)).toEqual(Object.keys(expected));
        expect(r.remaining).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it("every single value round-trips as a table entry", () => {
    fc.assert(
      fc.property(fieldValuePair, ([input, expected]) => {
        const w = new Writer();
        encodeTable(w, { v: input });
        expect(decodeTable(new Reader(w.take()))).toEqual({ v: expected });
      }),
      { numRuns: 1000 },
    );
  });

  it("a key named __proto__ is an ordinary key: it neither disappears nor becomes the prototype", () => {
    const input = tableOf([
      ["__proto__", { polluted: true }],
      ["a", 1],
    ]);
    const w = new Writer();
    encodeTable(w, input);
    const decoded = decodeTable(new Reader(w.take()));
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect((decoded as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.keys(decoded)).toEqual(["__proto__", "a"]);
    expect(Object.getOwnPropertyDescriptor(decoded, "__proto__")?.value).toEqual({ polluted: true });
  });

  it("tables survive inside methods and headers alike (same encoder, same tags)", () => {
    fc.assert(
      fc.property(fieldTablePair, ([input, expected]) => {
        const frames = parseAll(
          encodeFrames([
            {
              type: FrameType.Method,
              channel: 3,
              method: {
                name: "queue.declare",
                queue: "q",
                passive: false,
                durable: true,
                exclusive: false,
                autoDelete: false,
                noWait: false,
                arguments: input,
              },
            },
            { type: FrameType.Header, channel: 3, classId: 60, bodySize: 0, properties: { headers: input } },
          ]),
        );
        expect(frames[0]).toMatchObject({ method: { arguments: expected } });
        expect(frames[1]).toMatchObject({ properties: { headers: expected } });
      }),
      { numRuns: 100 },
    );
  });
});
