/**
 * Frames (spec 4.2.3) and the streaming frame parser.
 *
 *   0      1         3             7                  size+7 size+8
 *   +------+---------+-------------+  +------------+  +-----------+
 *   | type | channel |    size     |  |  payload   |  | frame-end |
 *   +------+---------+-------------+  +------------+  +-----------+
 *    octet   short       long          size octets      0xCE
 *
 * Content (4.2.6) is a method frame, then a header frame, then zero or more body frames:
 *
 *   header payload: class-id short | weight short (0) | body-size longlong | flags | properties
 *
 * frame_max counts the whole frame, header and end octet included, so a body frame carries at
 * most frame_max - 8 bytes of body.
 */
import { FRAME_END, FRAME_HEADER_SIZE, FRAME_OVERHEAD, FrameType } from "./constants.js";
import { FrameError } from "./errors.js";
import { decodeMethod, encodeMethod, type Method } from "./methods.js";
import { decodeProperties, encodeProperties, type BasicProperties } from "./properties.js";
import { Reader } from "./reader.js";
import { StringCache } from "./string-cache.js";
import { put16, put32, Writer } from "./writer.js";

/** A method frame (spec 4.2.4): one AMQP method and its arguments. */
export interface MethodFrame {
  type: typeof FrameType.Method;
  channel: number;
  method: Method;
}
/** A content header frame (spec 4.2.6): the body size and the message properties. */
export interface HeaderFrame {
  type: typeof FrameType.Header;
  channel: number;
  classId: number;
  bodySize: number;
  properties: BasicProperties;
}
/** A content body frame (spec 4.2.6.2): a slice of the message body. */
export interface BodyFrame {
  type: typeof FrameType.Body;
  channel: number;
  payload: Buffer;
}
/** A heartbeat frame (spec 4.2.7), always on channel 0. */
export interface HeartbeatFrame {
  type: typeof FrameType.Heartbeat;
  channel: 0;
}
/** An AMQP 0-9-1 frame as the codec reads and writes it (what the warren:frame:* channels carry). */
export type Frame = MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame;

// ---------------------------------------------------------------------------------------------
// encoding

function beginFrame(w: Writer, type: number, channel: number): number {
  if (!(channel >= 0 && channel <= 0xffff && channel === (channel | 0)))
    throw new RangeError(`channel must be 0..65535, got ${channel}`);
  w.ensure(FRAME_HEADER_SIZE);
  const mark = w.mark();
  const b = w.buf;
  b[w.pos] = type;
  put16(b, w.pos + 1, channel);
  w.pos += FRAME_HEADER_SIZE;
  return mark;
}

/** Patch the size, add the end octet; refuse a frame over frameMax (0 = no limit). */
function endFrame(w: Writer, mark: number, frameMax: number): void {
  const start = w.at(mark);
  const size = w.pos - start - FRAME_HEADER_SIZE;
  if (frameMax > 0 && size + FRAME_OVERHEAD > frameMax) {
    w.rewind(mark);
    throw new RangeError(`frame of ${size + FRAME_OVERHEAD} bytes exceeds the negotiated frame_max ${frameMax}`);
  }
  put32(w.buf, start + 3, size);
  w.ensure(1);
  w.buf[w.pos++] = FRAME_END;
}

/** @internal Appends one method frame. On a bad argument nothing is left written, and the error names the field. */
export function encodeMethodFrame(w: Writer, channel: number, method: Method, frameMax = 0): void {
  const mark = beginFrame(w, FrameType.Method, channel);
  try {
    encodeMethod(w, method);
  } catch (e) {
    w.rewind(mark);
    throw e;
  }
  endFrame(w, mark, frameMax);
}

/** @internal */
export function encodeHeaderFrame(
  w: Writer,
  channel: number,
  classId: number,
  bodySize: number,
  properties: BasicProperties,
  frameMax = 0,
): void {
  const mark = beginFrame(w, FrameType.Header, channel);
  try {
    w.ensure(12);
    put16(w.buf, w.pos, classId);
    put16(w.buf, w.pos + 2, 0);
    w.pos += 4;
    w.longlong(bodySize, "bodySize");
    encodeProperties(w, properties);
  } catch (e) {
    w.rewind(mark);
    throw e;
  }
  endFrame(w, mark, frameMax);
}

/** @internal Appends the body frames: as many as frame_max requires, none for an empty body (4.2.6.2). */
export function encodeBodyFrames(w: Writer, channel: number, body: Uint8Array, frameMax = 0): void {
  const max = frameMax > 0 ? frameMax - FRAME_OVERHEAD : 0x7fffffff;
  for (let off = 0; off < body.length; off += max) {
    const n = Math.min(max, body.length - off);
    w.ensure(n + FRAME_OVERHEAD);
    const b = w.buf;
    let p = w.pos;
    b[p] = FrameType.Body;
    put16(b, p + 1, channel);
    put32(b, p + 3, n);
    p += FRAME_HEADER_SIZE;
    b.set(off === 0 && n === body.length ? body : body.subarray(off, off + n), p);
    p += n;
    b[p++] = FRAME_END;
    w.pos = p;
  }
}

/** @internal Header and body frames of one content. Only the header can fail (a bad property), and it leaves nothing written. */
export function encodeContent(
  w: Writer,
  channel: number,
  classId: number,
  properties: BasicProperties,
  body: Uint8Array,
  frameMax = 0,
): void {
  encodeHeaderFrame(w, channel, classId, body.length, properties, frameMax);
  encodeBodyFrames(w, channel, body, frameMax);
}

const HEARTBEAT = Buffer.from([FrameType.Heartbeat, 0, 0, 0, 0, 0, 0, FRAME_END]);

/** @internal */
export function encodeHeartbeatFrame(w: Writer): void {
  w.raw(HEARTBEAT);
}

/** @internal Encode a list of frames into one Buffer (tests, tools; the client writes frames one by one). */
export function encodeFrames(frames: readonly Frame[], frameMax = 0): Buffer {
  const w = new Writer();
  for (const f of frames) {
    switch (f.type) {
      case FrameType.Method:
        encodeMethodFrame(w, f.channel, f.method, frameMax);
        break;
      case FrameType.Header:
        encodeHeaderFrame(w, f.channel, f.classId, f.bodySize, f.properties, frameMax);
        break;
      case FrameType.Body: {
        const mark = beginFrame(w, FrameType.Body, f.channel);
        w.raw(f.payload);
        endFrame(w, mark, frameMax);
        break;
      }
      case FrameType.Heartbeat:
        encodeHeartbeatFrame(w);
        break;
    }
  }
  return Buffer.from(w.take());
}

// ---------------------------------------------------------------------------------------------
// decoding

/**
 * The frames a parser hands out, one of each type, refilled by every next(): a delivery is three
 * frames, and a fresh object for each was a third of what decoding one allocated.
 */
interface Frames {
  method: MethodFrame;
  header: HeaderFrame;
  body: BodyFrame;
}

const HEARTBEAT_FRAME: HeartbeatFrame = Object.freeze({ type: FrameType.Heartbeat, channel: 0 });

/** Decode the payload between r.pos and r.end (the parser's own Reader, pointed into the chunk) into one of `f`. */
function decodePayload(type: number, channel: number, r: Reader, f: Frames): Frame {
  switch (type) {
    case FrameType.Method: {
      const m = f.method;
      m.channel = channel;
      m.method = decodeMethod(r);
      return m;
    }
    case FrameType.Header: {
      const h = f.header;
      h.channel = channel;
      h.classId = r.short();
      r.short(); // weight: unused, must be 0
      h.bodySize = r.longlong();
      h.properties = decodeProperties(r);
      return h;
    }
    case FrameType.Body: {
      const b = f.body;
      b.channel = channel;
      b.payload = r.buf.subarray(r.pos, r.end);
      return b;
    }
    case FrameType.Heartbeat:
      // Heartbeats belong to the connection (4.2.7): on any other channel it is a frame error.
      if (channel !== 0) throw new FrameError(501, `heartbeat frame on channel ${channel}`);
      return HEARTBEAT_FRAME;
    default:
      throw new FrameError(501, `unknown frame type ${type}`);
  }
}

/**
 * @internal Turns a stream of chunks (any size: one byte, or many frames at once) into frames.
 *
 * Invariants: chunks are kept as a list and never concatenated as they arrive; a frame that
 * lies within one chunk is decoded straight from it (its body payload is a zero-copy view); one
 * that spans chunks is copied exactly once, when all its bytes are there. The declared size is
 * checked against maxFrameSize as soon as the 7 header bytes are in, before any payload is
 * buffered, so a peer cannot make us hold more than one frame's worth. After a FrameError the
 * stream is out of sync and the parser must be dropped: the connection closes.
 *
 * The frame next() returns is the parser's own and the next call refills it: keep its parts
 * (the method, the properties, the payload), which are new each time, never the frame.
 */
export class FrameParser {
  /** The largest whole frame accepted (frame_max, header and end octet included). */
  maxFrameSize: number;
  private chunks: Buffer[] = [];
  /** Read offset into chunks[0]. */
  private offset = 0;
  private available = 0;
  private readonly scratch = Buffer.alloc(FRAME_HEADER_SIZE);
  /** Re-pointed at each frame: no Reader and no payload view are allocated per method or header frame. */
  private readonly reader = new Reader(this.scratch);
  private readonly frames: Frames = {
    method: { type: FrameType.Method, channel: 0, method: { name: "channel.close-ok" } },
    header: { type: FrameType.Header, channel: 0, classId: 0, bodySize: 0, properties: {} },
    body: { type: FrameType.Body, channel: 0, payload: this.scratch },
  };

  constructor(maxFrameSize = 131072) {
    this.maxFrameSize = maxFrameSize;
    this.reader.cache = new StringCache();
  }

  /** Bytes received and not yet parsed into frames. */
  get buffered(): number {
    return this.available;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.length;
  }

  /** The next complete frame (refilled by the next call), or undefined until more bytes arrive. Throws FrameError. */
  next(): Frame | undefined {
    if (this.available < FRAME_HEADER_SIZE) return undefined;
    const head = this.chunks[0]!;
    let off = this.offset;
    let type: number, channel: number, size: number;
    if (head.length - off >= FRAME_HEADER_SIZE) {
      type = head[off]!;
      channel = (head[off + 1]! << 8) | head[off + 2]!;
      size = head[off + 3]! * 0x1000000 + ((head[off + 4]! << 16) | (head[off + 5]! << 8) | head[off + 6]!);
    } else {
      this.peek(this.scratch, FRAME_HEADER_SIZE);
      type = this.scratch[0]!;
      channel = this.scratch.readUInt16BE(1);
      size = this.scratch.readUInt32BE(3);
    }
    if (size > this.maxFrameSize - FRAME_OVERHEAD) {
      throw new FrameError(501, `frame of ${size + FRAME_OVERHEAD} bytes exceeds the maximum of ${this.maxFrameSize}`);
    }
    const total = size + FRAME_OVERHEAD;
    if (this.available < total) return undefined;

    let frameBuf: Buffer;
    if (head.length - off >= total) {
      frameBuf = head;
      this.offset = off + total;
      if (this.offset === head.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    } else {
      frameBuf = Buffer.allocUnsafe(total);
      this.consumeInto(frameBuf, total);
      off = 0;
    }
    this.available -= total;
    if (frameBuf[off + total - 1] !== FRAME_END) {
      throw new FrameError(501, `bad frame-end octet 0x${frameBuf[off + total - 1]!.toString(16)} (expected 0xce)`);
    }
    const r = this.reader;
    r.buf = frameBuf;
    r.pos = off + FRAME_HEADER_SIZE;
    r.end = off + FRAME_HEADER_SIZE + size;
    return decodePayload(type, channel, r, this.frames);
  }

  /** Copy the first n buffered bytes into out without consuming them. */
  private peek(out: Buffer, n: number): void {
    let copied = 0;
    let off = this.offset;
    for (let i = 0; copied < n; i++) {
      const c = this.chunks[i]!;
      copied += c.copy(out, copied, off, Math.min(c.length, off + n - copied));
      off = 0;
    }
  }

  /** Copy and consume the first n buffered bytes. */
  private consumeInto(out: Buffer, n: number): void {
    let copied = 0;
    while (copied < n) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length - this.offset, n - copied);
      c.copy(out, copied, this.offset, this.offset + take);
      copied += take;
      this.offset += take;
      if (this.offset === c.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
  }
}
