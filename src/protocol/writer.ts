/**
 * A growable output cursor over a slab. Frames are written one after the other; `take()`
 * hands out the bytes written since the last take as a zero-copy view of the slab, and later
 * writes never touch bytes already taken until `release()` says the transport is done with
 * them: when the slab is full, the writer moves to another and only the untaken bytes move.
 * So a socket may hold a taken view for as long as it needs, and many frames written in one
 * tick leave as one contiguous write. After a release the writer writes over what it took
 * (the current slab from its start, the one left behind as the next), instead of allocating.
 *
 * Bad values are caught here, with the field named, before they reach the wire: a number out
 * of range is a RangeError, a non-string where a string belongs a TypeError.
 */
/**
 * Memory of the writer's own, never a slice of Node's shared pool (which serves allocations
 * under half its size, 64 KiB from Node.js 26 on): a slab kept for reuse would keep the pool's
 * whole chunk alive, and share it with whatever else was cut from it.
 */
function newSlab(size: number): Buffer {
  return Buffer.allocUnsafeSlow(size);
}

/**
 * @internal Big-endian stores by index: a Uint8Array store keeps the low 8 bits, so no masking is
 * needed. Buffer#writeUInt16BE/32BE check their arguments again on every call, which the
 * writer has already done; these are what every length, id and size on the hot path uses.
 */
export function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v;
}

/** @internal */
export function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** Strings up to this many UTF-16 units are tried as ASCII first (Writer#ascii). */
const ASCII_LOOP_MAX = 64;

export class Writer {
  buf: Buffer;
  pos = 0;
  /** Where the untaken bytes start. */
  private start = 0;
  private readonly slabSize: number;
  /** The last slab left behind, whose taken bytes the transport may still hold. */
  private retired: Buffer | undefined;
  /** A slab free to be written again. */
  private spare: Buffer | undefined;

  constructor(slabSize = 64 * 1024) {
    this.slabSize = slabSize;
    this.buf = newSlab(slabSize);
  }

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.pos - this.start;
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    const pending = this.pos - this.start;
    const next = this.slab(Math.max(this.slabSize, (pending + n) * 2));
    this.buf.copy(next, 0, this.start, this.pos);
    this.retire(next);
    this.pos = pending;
  }

  /** A slab of at least `size` bytes: the spare one if it is big enough. */
  private slab(size: number): Buffer {
    const spare = this.spare;
    if (spare !== undefined && spare.length >= size) {
      this.spare = undefined;
      return spare;
    }
    return newSlab(size);
  }

  /** Move on to `next`; the slab left behind may come back through release(). */
  private retire(next: Buffer): void {
    // Only slabs of the standard size come back; one grown for a large body goes to the GC.
    this.retired = this.buf.length === this.slabSize ? this.buf : undefined;
    this.buf = next;
    this.start = 0;
  }

  /**
   * The transport has consumed every byte taken so far (a TCP socket has copied them into the
   * kernel): the slab left behind becomes the spare, and with nothing untaken the current slab
   * starts over. Only for a transport that copies what it is given before write() returns;
   * another may still hold the views take() handed it.
   */
  release(): void {
    if (this.retired !== undefined) {
      this.spare = this.retired;
      this.retired = undefined;
    }
    if (this.pos === this.start) this.start = this.pos = 0;
  }

  /** A position that survives a grow (relative to the untaken bytes), for rewinding or patching. */
  mark(): number {
    return this.pos - this.start;
  }

  at(mark: number): number {
    return this.start + mark;
  }

  /** Drop everything written since `mark`: used when an encode fails half-way. */
  rewind(mark: number): void {
    this.pos = this.start + mark;
  }

  take(): Buffer {
    const out = this.buf.subarray(this.start, this.pos);
    this.start = this.pos;
    // Start the next slab early rather than hand out tiny tails of this one.
    if (this.buf.length - this.pos < 512) {
      this.retire(this.slab(this.slabSize));
      this.pos = 0;
    }
    return out;
  }

  octet(v: number, field = "octet"): void {
    if (!(v >= 0 && v <= 0xff && v === (v | 0))) throw rangeError(field, v, "an octet (0..255)");
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  short(v: number, field = "short"): void {
    if (!(v >= 0 && v <= 0xffff && v === (v | 0))) throw rangeError(field, v, "a short (0..65535)");
    this.ensure(2);
    put16(this.buf, this.pos, v);
    this.pos += 2;
  }

  long(v: number, field = "long"): void {
    if (!(v >= 0 && v <= 0xffffffff && v === Math.floor(v))) throw rangeError(field, v, "a long (0..2^32-1)");
    this.ensure(4);
    put32(this.buf, this.pos, v);
    this.pos += 4;
  }

  longlong(v: number | bigint, field = "longlong"): void {
    this.ensure(8);
    if (typeof v === "bigint") {
      if (v < 0n || v > 0xffffffffffffffffn) throw rangeError(field, v, "an unsigned 64-bit integer");
      this.buf.writeBigUInt64BE(v, this.pos);
    } else {
      if (!(v >= 0 && Number.isSafeInteger(v)))
        throw rangeError(field, v, "an unsigned integer below 2^53 (use a bigint beyond)");
      put32(this.buf, this.pos, Math.floor(v / 0x100000000));
      put32(this.buf, this.pos + 4, v >>> 0);
    }
    this.pos += 8;
  }

  /** `suffix` is appended to `field` in an error (a table's keys: no name built per key). */
  shortstr(s: string, field = "shortstr", suffix = ""): void {
    if (typeof s !== "string") throw new TypeError(`${field}${suffix} must be a string, got ${typeof s}`);
    // Every UTF-16 unit is at least one UTF-8 byte: refuse a long string before reserving 3x its size.
    if (s.length > 255)
      throw new RangeError(`${field}${suffix} is at least ${s.length} bytes; a short string holds at most 255`);
    if (s.length <= ASCII_LOOP_MAX && this.ascii(s, 1)) {
      this.buf[this.pos] = s.length;
      this.pos += 1 + s.length;
      return;
    }
    // A UTF-16 code unit is at most 3 UTF-8 bytes, so up to 85 units always fit in 255 bytes.
    this.ensure(1 + s.length * 3);
    const len = this.buf.write(s, this.pos + 1, "utf8");
    if (len > 255) {
      throw new RangeError(`${field}${suffix} is ${len} bytes; a short string holds at most 255`);
    }
    this.buf[this.pos] = len;
    this.pos += 1 + len;
  }

  longstr(s: string | Uint8Array, field = "longstr"): void {
    if (typeof s === "string") {
      if (s.length <= ASCII_LOOP_MAX && this.ascii(s, 4)) {
        put32(this.buf, this.pos, s.length);
        this.pos += 4 + s.length;
        return;
      }
      this.ensure(4 + s.length * 3);
      const len = this.buf.write(s, this.pos + 4, "utf8");
      put32(this.buf, this.pos, len);
      this.pos += 4 + len;
    } else if (s instanceof Uint8Array) {
      this.bytes4(s);
    } else {
      throw new TypeError(`${field} must be a string or a Buffer, got ${typeof s}`);
    }
  }

  /**
   * Writes s `skip` bytes past pos if it is all ASCII (one byte per UTF-16 unit, the same in
   * UTF-8), and says whether it was; on false the bytes written are garbage the caller writes
   * over. For the short names and ids of a publish this loop is several times cheaper than
   * Buffer#write, whose argument handling and call into C++ cost more than the copy.
   */
  private ascii(s: string, skip: number): boolean {
    const n = s.length;
    this.ensure(skip + n);
    const b = this.buf;
    const at = this.pos + skip;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) return false;
      b[at + i] = c;
    }
    return true;
  }

  /** A 32-bit length, then the bytes. */
  bytes4(b: Uint8Array): void {
    this.ensure(4 + b.length);
    put32(this.buf, this.pos, b.length);
    this.buf.set(b, this.pos + 4);
    this.pos += 4 + b.length;
  }

  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

function rangeError(field: string, v: unknown, what: string): RangeError | TypeError {
  if (typeof v !== "number" && typeof v !== "bigint") return new TypeError(`${field} must be ${what}, got ${typeof v}`);
  return new RangeError(`${field} must be ${what}, got ${String(v)}`);
}
