/**
 * The two string fast paths of the codec: the Writer copies an ASCII string unit by unit instead
 * of calling Buffer#write, and the Reader hands back a short string it decoded before instead
 * of decoding it again (its StringCache, as the FrameParser's reader has). Both must be
 * invisible: the bytes written are exactly UTF-8, and every string read is exactly what
 * Buffer#toString("utf8") makes of its bytes, whatever came before and from whichever buffer.
 */
import { describe, expect, test } from "vitest";
import fc from "fast-check";
import { Reader } from "../../src/protocol/reader.js";
import { StringCache } from "../../src/protocol/string-cache.js";
import { Writer } from "../../src/protocol/writer.js";

const SLAB = 8 * 1024;

// Strings either side of the ASCII loop's limit (64 units), all-ASCII or not, with lone surrogates.
const anyString = fc.oneof(
  fc.string({ unit: "binary-ascii", maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: fc.constantFrom("a", "é", "\ud800", "\u{1f600}", "\u007f", "\u0080"), maxLength: 70 }),
);

describe("Writer strings", () => {
  test("shortstr and longstr write exactly the UTF-8 bytes, also where the slab runs out mid-string", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: SLAB }),
        fc.array(anyString, { minLength: 1, maxLength: 20 }),
        (before, strings) => {
          const w = new Writer(SLAB);
          w.raw(Buffer.alloc(before, 0xaa)); // so that some strings start right at a slab's end
          const expected: Buffer[] = [Buffer.alloc(before, 0xaa)];
          for (const s of strings) {
            const utf8 = Buffer.from(s, "utf8");
            const long = Buffer.alloc(4);
            long.writeUInt32BE(utf8.length);
            w.longstr(s);
            expected.push(long, utf8);
            if (utf8.length <= 255) {
              w.shortstr(s);
              expected.push(Buffer.from([utf8.length]), utf8);
            }
          }
          expect(w.take().equals(Buffer.concat(expected))).toBe(true);
        },
      ),
    );
  });

  test("a shortstr of more than 255 UTF-8 bytes is refused after the ASCII attempt, and the writer is unchanged", () => {
    const w = new Writer(SLAB);
    w.shortstr("ok");
    expect(() => w.shortstr("é".repeat(130))).toThrow(RangeError); // 130 units, 260 bytes
    expect(w.take().equals(Buffer.from([2, 0x6f, 0x6b]))).toBe(true);
  });
});

function shortstrs(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts.flatMap((p) => [Buffer.from([p.length]), p]));
}

/** A Reader over buf with a cache of its own, as the FrameParser's. */
function cached(buf: Buffer, cache = new StringCache()): Reader {
  const r = new Reader(buf);
  r.cache = cache;
  return r;
}

describe("Reader shortstr", () => {
  test("every string read equals Buffer#toString of its bytes, however often and in whatever order it repeats", () => {
    // A small pool, so that the same strings and strings that share a hash set come back often;
    // bytes of any value, so that invalid UTF-8 (decoded to U+FFFD) and multi-byte characters mix in.
    const bytes = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 60 }),
      fc.string({ unit: "binary-ascii", maxLength: 60 }).map((s) => new Uint8Array(Buffer.from(s))),
    );
    fc.assert(
      fc.property(
        fc.array(bytes, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
        (pool, picks) => {
          const parts = picks.map((i) => pool[i % pool.length]!);
          const r = cached(shortstrs(parts));
          for (const p of parts) expect(r.shortstr()).toBe(Buffer.from(p).toString("utf8"));
          expect(r.pos).toBe(r.end);
        },
      ),
    );
  });

  test("strings alike in length and in first, middle and last byte are still told apart", () => {
    // Same length 5, same bytes at 0, 2 and 4: the same set; they differ only at 1 and 3.
    const parts = ["abcde", "aXcYe", "abcde", "aXcYe", "a\xffc\xffe"].map(
      (s) => new Uint8Array(Buffer.from(s, "latin1")),
    );
    const r = cached(shortstrs(parts));
    expect([r.shortstr(), r.shortstr(), r.shortstr(), r.shortstr(), r.shortstr()]).toEqual([
      "abcde",
      "aXcYe",
      "abcde",
      "aXcYe",
      "a\ufffdc\ufffde",
    ]);
  });

  test("a string with fewer units than bytes is never matched against shorter bytes that share its set", () => {
    // The UTF-8 of c1 "x" c2, for c1 and c2 in U+0080..U+00FF, is five bytes that decode to three
    // units, each equal to a byte of c1 x c2, whose own decoding is U+FFFD x U+FFFD. Among all
    // these pairs some share a hash set; the three bytes must still decode as what they are.
    let pairs = 0;
    for (let c1 = 0x80; c1 <= 0xff; c1++) {
      for (let c2 = 0x80; c2 <= 0xff; c2++) {
        const units = String.fromCharCode(c1, 0x78, c2);
        const parts = [new Uint8Array(Buffer.from(units, "utf8")), Uint8Array.of(c1, 0x78, c2)];
        const r = cached(shortstrs(parts));
        expect(r.shortstr()).toBe(units);
        expect(r.shortstr()).toBe("\ufffdx\ufffd");
        pairs++;
      }
    }
    expect(pairs).toBe(128 * 128);
  });

  test("strings that differ only in their last bytes (past the last whole word) are told apart", () => {
    // Length 6: one word and a tail of two bytes; the same first, middle and last byte.
    const parts = ["abcdef", "abcdXf", "abcdef", "abcdXf"].map((s) => new Uint8Array(Buffer.from(s)));
    const r = cached(shortstrs(parts));
    expect([r.shortstr(), r.shortstr(), r.shortstr(), r.shortstr()]).toEqual(["abcdef", "abcdXf", "abcdef", "abcdXf"]);
  });

  test("one cache across many buffers, at any offset in their memory: each string is that of its own bytes", () => {
    // As the parser's reader moves from socket chunk to socket chunk, some of them views into
    // a larger allocation (Buffer's pool), each its own DataView.
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.nat(7),
            fc.constantFrom("amq.ctag-1", "amq.ctag-2", "bench.exchange", "rk", "é-key", "x", "abcde", "aXcYe"),
          ),
          { minLength: 1, maxLength: 40 },
        ),
        (reads) => {
          const cache = new StringCache();
          for (const [offset, str] of reads) {
            const bytes = shortstrs([new Uint8Array(Buffer.from(str))]);
            const backing = Buffer.alloc(offset + bytes.length + 3, 0xee);
            bytes.copy(backing, offset);
            const r = cached(backing.subarray(offset, offset + bytes.length), cache);
            expect(r.shortstr()).toBe(str);
          }
        },
      ),
    );
  });

  test("long strings go through the same cache: any mix of short and long reads is each its own bytes' string", () => {
    // Lengths either side of the cache's limit (48) and past a shortstr's (255), so that a long
    // string the cache must not hold (its length does not fit a way) is decoded as it comes.
    const bytes = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 60 }),
      fc.string({ unit: "binary-ascii", minLength: 40, maxLength: 56 }).map((s) => new Uint8Array(Buffer.from(s))),
      fc.uint8Array({ minLength: 250, maxLength: 300 }),
    );
    fc.assert(
      fc.property(
        fc.array(bytes, { minLength: 1, maxLength: 6 }),
        fc.array(fc.tuple(fc.nat(), fc.boolean()), { minLength: 1, maxLength: 40 }),
        (pool, picks) => {
          const reads = picks.map(([i, long]) => ({
            p: pool[i % pool.length]!,
            long: long || pool[i % pool.length]!.length > 255,
          }));
          const wire = Buffer.concat(
            reads.map(({ p, long }) => {
              const len = long ? Buffer.alloc(4) : Buffer.from([p.length]);
              if (long) len.writeUInt32BE(p.length);
              return Buffer.concat([len, p]);
            }),
          );
          const r = cached(wire);
          for (const { p, long } of reads)
            expect(long ? r.longstr() : r.shortstr()).toBe(Buffer.from(p).toString("utf8"));
          expect(r.pos).toBe(r.end);
        },
      ),
    );
  });

  test("without a cache (a Reader made for one payload), strings are decoded as they come", () => {
    const parts = ["abc", "abc", "é"].map((s) => new Uint8Array(Buffer.from(s)));
    const r = new Reader(shortstrs(parts));
    expect(r.cache).toBeUndefined();
    expect([r.shortstr(), r.shortstr(), r.shortstr()]).toEqual(["abc", "abc", "é"]);
  });

  test("a string that decoded to U+FFFD is not matched against the bytes of another", () => {
    // 0xEF 0xBF 0xBD is U+FFFD in UTF-8; a lone 0xFF also decodes to U+FFFD, one unit from one byte.
    const parts = [Uint8Array.of(0x41, 0xff, 0x42), Uint8Array.of(0x41, 0xfd, 0x42), Uint8Array.of(0x41, 0xff, 0x42)];
    const r = cached(shortstrs(parts));
    expect([r.shortstr(), r.shortstr(), r.shortstr()]).toEqual(parts.map((p) => Buffer.from(p).toString("utf8")));
  });
});
