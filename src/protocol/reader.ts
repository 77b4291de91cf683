import { FrameError } from "./errors.js";

/**
 * Buffer#utf8Slice: what toString("utf8", start, end) ends up calling, without its argument
 * juggling (a quarter of the cost of a short string). Not in Node's documented API, though
 * present in every version; fall back to toString should it ever go. The choice is written out
 * at each use rather than in a helper: V8 did not inline the helper.
 */
const HAS_UTF8_SLICE = typeof (Buffer.prototype as { utf8Slice?: unknown }).utf8Slice === "function";
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

/** Short strings up to this many bytes are looked up in Reader#interned first. */
const INTERN_MAX = 48;
/** A power of two. */
const INTERN_SLOTS = 64;

/**
 * A cursor over the bytes of one frame payload. Every read checks the bounds first, so a
 * truncated or lying payload is a FrameError (502 SYNTAX_ERROR), never a RangeError from
 * Buffer or a read past the frame into the next one.
 */
export class Reader {
  buf: Buffer;
  pos: number;
  end: number;
  /**
   * Short strings read before, by a hash of their bytes. A consumer's deliveries repeat the
   * same consumer tag, exchange, routing key, content type and header names frame after frame;
   * comparing a few bytes with the string decoded last time is several times cheaper than
   * decoding (and allocating) it again, and a string is immutable, so sharing it is invisible.
   */
  private readonly interned: (string | undefined)[] = new Array<string | undefined>(INTERN_SLOTS).fill(undefined);

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number): void {
    if (this.pos + n > this.end) {
      throw new FrameError(502, `truncated payload: needed ${n} more bytes, ${this.end - this.pos} left`);
    }
  }

  octet(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  // Bytes are read by index after need() has checked the bounds once: Buffer's readUInt*BE
  // would check them again on every call.
  short(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  long(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  /** An unsigned 64-bit value as a number; beyond 2^53 it would lose precision, so it is refused. */
  longlong(): number {
    this.need(8);
    const b = this.buf;
    const p = this.pos;
    const hi = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
    const lo = b[p + 4]! * 0x1000000 + ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!);
    this.pos = p + 8;
    if (hi > 0x1fffff) throw new FrameError(502, "64-bit value beyond 2^53 where a number was expected");
    return hi * 0x100000000 + lo;
  }

  shortstr(): string {
    const len = this.octet();
    this.need(len);
    const b = this.buf;
    const start = this.pos;
    this.pos += len;
    if (len === 0) return "";
    if (len > INTERN_MAX) return HAS_UTF8_SLICE ? (b as Utf8Sliceable).utf8Slice(start, start + len) : b.toString("utf8", start, start + len);
    const slot = (len ^ (b[start]! << 1) ^ (b[start + (len >> 1)]! << 2) ^ (b[start + len - 1]! << 3)) & (INTERN_SLOTS - 1);
    const seen = this.interned[slot];
    if (seen !== undefined && seen.length === len) {
      let i = 0;
      while (i < len && seen.charCodeAt(i) === b[start + i]) i++;
      if (i === len) return seen;
    }
    const s = HAS_UTF8_SLICE ? (b as Utf8Sliceable).utf8Slice(start, start + len) : b.toString("utf8", start, start + len);
    // Only a string of one UTF-16 unit per byte can be matched byte for unit above: ASCII (a
    // multi-byte sequence decodes to fewer units, an invalid byte to U+FFFD, equal to no byte).
    if (s.length === len) this.interned[slot] = s;
    return s;
  }

  /** The raw bytes of a long string: a zero-copy view into the frame. */
  longbytes(): Buffer {
    const len = this.long();
    this.need(len);
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }

  longstr(): string {
    const len = this.long();
    this.need(len);
    const start = this.pos;
    const s = HAS_UTF8_SLICE ? (this.buf as Utf8Sliceable).utf8Slice(start, start + len) : this.buf.toString("utf8", start, start + len);
    this.pos += len;
    return s;
  }
}
