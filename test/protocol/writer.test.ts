/**
 * The Writer's slabs: a view that take() handed out keeps its bytes until the transport says it
 * has consumed them (release), however the writer moves between slabs meanwhile; after release,
 * the same memory is written again instead of a new slab being allocated.
 */
import { describe, expect, test } from "vitest";
import fc from "fast-check";
import { Writer } from "../../src/protocol/writer.js";

// Above Buffer.poolSize / 2, so each slab is an ArrayBuffer of its own (as the real 64 KiB ones are).
const SLAB = 8 * 1024;

function fill(w: Writer, n: number, byte: number): void {
  w.raw(Buffer.alloc(n, byte));
}

describe("Writer slabs", () => {
  test("taken views keep their bytes across writes, slab changes and growth, until release", () => {
    // Mostly small writes, so that slabs fill up to their last 512 bytes and take() moves on,
    // now and then one larger than a slab, so that the writer grows; releases rare enough that
    // the writer often moves on more than once between two.
    const op = fc.oneof(
      { arbitrary: fc.record({ write: fc.integer({ min: 1, max: 1500 }) }), weight: 12 },
      { arbitrary: fc.record({ write: fc.integer({ min: 1, max: 2 * SLAB }) }), weight: 1 },
      { arbitrary: fc.constant({ take: true as const }), weight: 4 },
      { arbitrary: fc.constant({ release: true as const }), weight: 1 },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 80 }), (ops) => {
        const w = new Writer(SLAB);
        const live: { view: Buffer; expected: Buffer }[] = [];
        let pending: Buffer[] = [];
        let byte = 0;
        for (const o of ops) {
          if ("write" in o) {
            byte = (byte + 1) & 0xff;
            fill(w, o.write, byte);
            pending.push(Buffer.alloc(o.write, byte));
          } else if ("take" in o) {
            const view = w.take();
            expect(view.equals(Buffer.concat(pending))).toBe(true); // exactly what was written since the last take
            live.push({ view, expected: Buffer.from(view) });
            pending = [];
          } else {
            w.release();
            live.length = 0; // the transport is done with them: they may be overwritten now
          }
          for (const { view, expected } of live) expect(view.equals(expected)).toBe(true);
        }
      }),
    );
  });

  test("after release the slab is written again from its start, not replaced", () => {
    const w = new Writer(SLAB);
    fill(w, 100, 1);
    const first = w.take();
    w.release();
    fill(w, 100, 2);
    const second = w.take();
    expect(second.buffer).toBe(first.buffer);
    expect(second.byteOffset).toBe(first.byteOffset);
    expect(first[0]).toBe(2); // the released bytes were written over
  });

  test("a slab filled and left behind becomes the next slab once released", () => {
    const w = new Writer(SLAB);
    fill(w, SLAB - 100, 1);
    const first = w.take(); // under 512 bytes left: the writer moves to a new slab
    w.release();
    fill(w, SLAB - 100, 2);
    const second = w.take(); // and again: this time to the slab released above
    expect(second.buffer).not.toBe(first.buffer);
    fill(w, 10, 3);
    const third = w.take();
    expect(third.buffer).toBe(first.buffer);
    expect(first[0]).toBe(3);
    expect(second.every((b) => b === 2)).toBe(true); // not released: untouched
  });

  test("a slab grown for a large write is not kept for reuse", () => {
    const w = new Writer(SLAB);
    fill(w, 4 * SLAB, 1); // grows: a slab of its own, larger than the standard size
    const large = w.take();
    expect(large.buffer.byteLength).toBeGreaterThan(SLAB);
    fill(w, 4 * SLAB - 100, 2);
    w.take(); // under 512 bytes left: on to a standard slab, the large one left behind
    w.release();
    fill(w, SLAB - 100, 3);
    w.take(); // on to the next slab: a new one, not the large one
    fill(w, 10, 4);
    expect(w.take().buffer).not.toBe(large.buffer);
  });
});
