import { FrameError } from "./errors.js";
import { STRING_CACHE_MAX, type StringCache } from "./string-cache.js";

/**
 * Buffer#utf8Slice: what toString("utf8", start, end) ends up calling, without its argument
 * juggling (a quarter of the cost of a short string). Not in Node's documented API, though
 * present in every version; fall back to toString should it ever go. The choice is written out
 * at each use rather than in a helper: V8 did not inline the helper.
 */
const HAS_UTF8_SLICE = typeof (Buffer.prototype as { utf8Slice?: unknown }).utf8Slice === "function";
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

/**
 * A cursor over the bytes of one frame payload. Every read checks the bounds first, so a
 * truncated or lying payload is a FrameError (502 SYNTAX_ERROR), never a RangeError from
 * Buffer or a read past the frame into the next one.
 */
export class Reader {
  buf: Buffer;
  pos: number;
  end: number;
  /** Where strings are looked up before they are decoded: the FrameParser's, which lives as long as its connection. */
  cache: StringCache | undefined;

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
    // Below 2^32 (delivery tags, body sizes) without the float multiply, whose result V8 boxes
    // as a heap number where a small integer fits.
    return hi === 0 ? lo : hi * 0x100000000 + lo;
  }

  shortstr(): string {
    return this.utf8(this.octet());
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
    return this.utf8(this.long());
  }

  /**
   * The next len bytes as a string, found in the cache if they were decoded before. Long strings
   * of up to STRING_CACHE_MAX bytes are looked up as short ones are: a header's value tends to
   * repeat from message to message as much as its name does.
   */
  private utf8(len: number): string {
    this.need(len);
    const b = this.buf;
    const start = this.pos;
    this.pos += len;
    if (len === 0) return "";
    const cache = this.cache;
    if (cache === undefined || len > STRING_CACHE_MAX)
      return HAS_UTF8_SLICE
        ? (b as Utf8Sliceable).utf8Slice(start, start + len)
        : b.toString("utf8", start, start + len);
    const seen = cache.find(b, start, len);
    if (seen !== undefined) return seen;
    const s = HAS_UTF8_SLICE
      ? (b as Utf8Sliceable).utf8Slice(start, start + len)
      : b.toString("utf8", start, start + len);
    cache.add(b, start, len, s);
    return s;
  }
}
