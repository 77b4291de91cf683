/**
 * The stream parser gives the same frames however the bytes are cut into chunks: TCP
 * guarantees order, never boundaries, so a frame may arrive in pieces or many frames at once.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeFrames, FrameParser, FrameType, type Frame } from "../../src/protocol/index.js";

/** method + header + several bodies + heartbeat, then a second, empty message, as a broker sends them. */
function stream(): { bytes: Buffer; frames: Frame[] } {
  const deliver = {
    name: "basic.deliver",
    consumerTag: "amq.ctag-1",
    deliveryTag: 7,
    redelivered: false,
    exchange: "ex",
    routingKey: "rk",
  } as const;
  const props = {
    contentType: "application/json",
    headers: { n: 1, s: "x", nested: { a: [1, "b"] } },
    deliveryMode: 2,
  };
  const body = Buffer.from(Array.from({ length: 50 }, (_, i) => i));
  const bodies: Frame[] = [];
  for (let off = 0; off < body.length; off += 16)
    bodies.push({ type: FrameType.Body, channel: 1, payload: body.subarray(off, off + 16) });
  const frames: Frame[] = [
    { type: FrameType.Method, channel: 1, method: deliver },
    { type: FrameType.Header, channel: 1, classId: 60, bodySize: body.length, properties: props },
    ...bodies,
    { type: FrameType.Heartbeat, channel: 0 },
    { type: FrameType.Method, channel: 1, method: { ...deliver, deliveryTag: 8 } },
    { type: FrameType.Header, channel: 1, classId: 60, bodySize: 0, properties: {} },
    { type: FrameType.Heartbeat, channel: 0 },
  ];
  return { bytes: encodeFrames(frames), frames };
}

function feed(pieces: Buffer[]): Frame[] {
  const p = new FrameParser(4096);
  const out: Frame[] = [];
  for (const piece of pieces) {
    p.push(piece);
    for (let f = p.next(); f !== undefined; f = p.next()) out.push({ ...f }); // the parser refills its frames
  }
  expect(p.buffered, "bytes left over").toBe(0);
  return out;
}

const { bytes, frames } = stream();

describe("a multi-frame stream", () => {
  it("parses in one chunk", () => {
    expect(frames.length).toBeGreaterThanOrEqual(9);
    expect(feed([bytes])).toEqual(frames);
  });

  it("parses the same when split in two at every possible point", () => {
    for (let i = 0; i <= bytes.length; i++) {
      expect(feed([bytes.subarray(0, i), bytes.subarray(i)]), `split at ${i}`).toEqual(frames);
    }
  });

  it("parses the same one byte at a time", () => {
    // Copies, so no piece shares memory with its neighbour: the parser must not rely on it.
    const pieces = Array.from(bytes, (b) => Buffer.from([b]));
    expect(feed(pieces)).toEqual(frames);
  });

  it("parses the same for arbitrary chunk boundaries", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const pieces = at.slice(1).map((end, i) => bytes.subarray(at[i]!, end));
        expect(feed(pieces)).toEqual(frames);
      }),
      { numRuns: 300 },
    );
  });

  it("a frame inside one chunk is not copied: its body is a view of that chunk", () => {
    const body = Buffer.from("zero-copy");
    const chunk = encodeFrames([{ type: FrameType.Body, channel: 1, payload: body }]);
    const p = new FrameParser(4096);
    p.push(chunk);
    const f = p.next();
    expect(f).toMatchObject({ type: FrameType.Body, payload: body });
    if (f?.type !== FrameType.Body) throw new Error("not a body frame");
    expect(f.payload.buffer).toBe(chunk.buffer);
    expect(f.payload.byteOffset).toBe(chunk.byteOffset + 7);
  });

  it("the parser refills one frame per type, and what it held stays the caller's", () => {
    const p = new FrameParser(4096);
    p.push(bytes);
    const seen = new Map<number, Frame>();
    const parts: unknown[] = [];
    for (let f = p.next(); f !== undefined; f = p.next()) {
      if (seen.has(f.type)) expect(f, `frame type ${f.type}`).toBe(seen.get(f.type));
      seen.set(f.type, f);
      parts.push(
        f.type === FrameType.Method
          ? f.method
          : f.type === FrameType.Header
            ? f.properties
            : f.type === FrameType.Body
              ? f.payload
              : f.type,
      );
    }
    // Every method, property list and payload is its own, and still what was sent.
    const expected = frames.map((f) =>
      f.type === FrameType.Method
        ? f.method
        : f.type === FrameType.Header
          ? f.properties
          : f.type === FrameType.Body
            ? f.payload
            : f.type,
    );
    expect(parts).toEqual(expected);
    const objects = parts.filter((x) => typeof x === "object");
    expect(new Set(objects).size).toBe(objects.length);
  });

  it("a frame waits for its last byte, and the buffered count says what is held", () => {
    const p = new FrameParser(4096);
    p.push(bytes.subarray(0, 6));
    expect(p.next()).toBeUndefined(); // not even a frame header yet
    p.push(bytes.subarray(6, 20));
    expect(p.next()).toBeUndefined();
    expect(p.buffered).toBe(20);
  });
});
