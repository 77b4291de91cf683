/**
 * Fuzz: whatever bytes a peer sends, the codec answers with a FrameError carrying the reply
 * code to close the connection with -- never a RangeError from Buffer, a TypeError, a stack
 * overflow or a hang. Random streams mostly die at the frame header, so the mutated valid
 * streams and the payload-level fuzzing (a real method id followed by noise) are what reach
 * the method, property and table decoders.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeMethod,
  decodeProperties,
  decodeTable,
  encodeFrames,
  FrameError,
  FrameParser,
  FrameType,
  methodIds,
  Reader,
  type Frame,
} from "../../src/protocol/index.js";
import { rawFrame } from "../helpers/amqp-bytes.js";
import { anyPropertiesPair, fieldTablePair, methodNames, methodPair } from "./arbitraries.js";

/** 501 FRAME_ERROR, 502 SYNTAX_ERROR, 503 COMMAND_INVALID, 505 UNEXPECTED_FRAME. */
const CODES = [501, 502, 503, 505];

function expectOnlyFrameErrors(run: () => void): void {
  try {
    run();
  } catch (e) {
    if (!(e instanceof FrameError)) throw new Error(`expected a FrameError, got ${String(e)}`, { cause: e });
    expect(CODES).toContain(e.code);
  }
}

/** Everything the parser makes of `chunks`, until it wants more bytes or throws. */
function drain(chunks: Buffer[], maxFrameSize = 4096): void {
  const p = new FrameParser(maxFrameSize);
  for (const c of chunks) {
    p.push(c);
    for (let f = p.next(); f !== undefined; f = p.next());
  }
}

/** A valid stream with something of everything: methods with tables, a header with properties, bodies, heartbeat. */
const validStream = fc
  .tuple(fc.constantFrom(...methodNames).chain(methodPair), anyPropertiesPair, fc.uint8Array({ maxLength: 40 }))
  .map(([[method], [props], body]) => {
    const frames: Frame[] = [
      { type: FrameType.Method, channel: 1, method },
      { type: FrameType.Header, channel: 1, classId: 60, bodySize: body.length, properties: props },
      { type: FrameType.Body, channel: 1, payload: Buffer.from(body) },
      { type: FrameType.Heartbeat, channel: 0 },
    ];
    return encodeFrames(frames);
  })
  .filter((b) => b.length < 4000);

type Mutation =
  | { kind: "flip"; at: number; value: number }
  | { kind: "cut"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; n: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
);

function mutate(bytes: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(bytes);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    if (m.kind === "flip") b[at] = m.value;
    else if (m.kind === "cut") b = b.subarray(0, at);
    else if (m.kind === "insert") b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
  }
  return b;
}

describe("FrameParser under fuzz raises only FrameError", () => {
  it("random byte streams, in random chunks", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        expectOnlyFrameErrors(() => drain(chunks.map((c) => Buffer.from(c))));
      }),
      { numRuns: 2000 },
    );
  });

  it("random bytes behind a plausible frame header (so the payload decoders see them)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 3, 8, 0, 4, 255),
        fc.integer({ min: 0, max: 3 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom(0xce, 0xce, 0xce, 0),
        (type, channel, payload, end) => {
          expectOnlyFrameErrors(() => drain([rawFrame(type, channel, Buffer.from(payload), end)]));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("mutated valid streams: bytes changed, cut, inserted, deleted", () => {
    fc.assert(
      fc.property(
        validStream,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 64 }),
        (bytes, mutations, chunk) => {
          const b = mutate(bytes, mutations);
          const chunks: Buffer[] = [];
          for (let off = 0; off < b.length; off += chunk) chunks.push(b.subarray(off, off + chunk));
          expectOnlyFrameErrors(() => drain(chunks));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("payload decoders under fuzz raise only FrameError", () => {
  const ids = Object.values(methodIds);

  it("a real class and method id followed by noise", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ids), fc.uint8Array({ maxLength: 100 }), ([classId, methodId], noise) => {
        const b = Buffer.alloc(4 + noise.length);
        b.writeUInt16BE(classId, 0);
        b.writeUInt16BE(methodId, 2);
        b.set(noise, 4);
        expectOnlyFrameErrors(() => decodeMethod(new Reader(b)));
      }),
      { numRuns: 3000 },
    );
  });

  it("mutated field tables", () => {
    fc.assert(
      fc.property(fieldTablePair, fc.array(mutation, { minLength: 1, maxLength: 3 }), ([table], mutations) => {
        const encoded = encodeFrames([
          { type: FrameType.Header, channel: 1, classId: 60, bodySize: 0, properties: { headers: table } },
        ]);
        // payload after class (2), weight (2), body size (8), flags (2): the table itself
        const bytes = mutate(encoded.subarray(7 + 14, encoded.length - 1), mutations);
        expectOnlyFrameErrors(() => decodeTable(new Reader(bytes)));
      }),
      { numRuns: 1000 },
    );
  });

  it("random property lists behind every flags word", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 120 }), (flags, rest) => {
        const b = Buffer.alloc(2 + rest.length);
        b.writeUInt16BE(flags, 0);
        b.set(rest, 2);
        expectOnlyFrameErrors(() => decodeProperties(new Reader(b)));
      }),
      { numRuns: 3000 },
    );
  });

  it("tables nested 100000 deep are refused without exhausting the stack", () => {
    // Each level: tag 'A' then a 32-bit length covering everything inside it.
    const depth = 100_000;
    const b = Buffer.alloc(4 + depth * 5);
    b.writeUInt32BE(depth * 5, 0);
    for (let i = 0; i < depth; i++) {
      b[4 + i * 5] = 0x41;
      b.writeUInt32BE((depth - i - 1) * 5, 4 + i * 5 + 1);
    }
    // As an array value in a table (needs a key first): one key "k".
    const table = Buffer.concat([Buffer.from([0, 0, 0, 0, 1, 0x6b]), b.subarray(4)]);
    table.writeUInt32BE(table.length - 4, 0);
    const err = (() => {
      try {
        decodeTable(new Reader(table));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(FrameError);
    expect((err as FrameError).code).toBe(502);
  });
});
