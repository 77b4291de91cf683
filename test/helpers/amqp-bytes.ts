/**
 * AMQP 0-9-1 bytes built and read by hand, for the fake server and for tests that play the
 * client themselves. Written from the spec (section 4.2 and the connection class), not with
 * src/protocol: a test double that shared the codec under test would share its bugs.
 *
 * Frame layout (spec 4.2.3):
 *
 *   0      1         3         7                  size+7 size+8
 *   +------+---------+---------+    +-------------+  +-----------+
 *   | type | channel |  size   |    |   payload   |  | frame-end |
 *   +------+---------+---------+    +-------------+  +-----------+
 *    octet   short     long          size octets       octet 0xCE
 *
 * A method payload is class-id (short), method-id (short), then the arguments.
 */
export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;
export const FRAME_END = 0xce;
/** "AMQP" 0 0 9 1 */
export const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

/** Connection class (10) method ids. */
export const Connection = {
  classId: 10,
  start: 10,
  startOk: 11,
  secure: 20,
  secureOk: 21,
  tune: 30,
  tuneOk: 31,
  open: 40,
  openOk: 41,
  close: 50,
  closeOk: 51,
  blocked: 60,
  unblocked: 61,
} as const;

export interface RawFrame {
  type: number;
  channel: number;
  payload: Buffer;
}

export interface MethodFrame extends RawFrame {
  classId: number;
  methodId: number;
  /** The payload after class-id and method-id; read it with `new Cursor(args)`. */
  args: Buffer;
}

// ---------------------------------------------------------------------------------------
// Encoding, by hand.

export function u8(n: number): Buffer {
  const b = Buffer.alloc(1);
  b.writeUInt8(n);
  return b;
}
export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
export function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
/** short string: length octet, then at most 255 bytes (not checked, on purpose: tests may lie). */
export function shortstr(s: string | Buffer): Buffer {
  const bytes = typeof s === "string" ? Buffer.from(s, "utf8") : s;
  return Buffer.concat([u8(bytes.length & 0xff), bytes]);
}
/** long string: length long, then the bytes. */
export function longstr(s: string | Buffer): Buffer {
  const bytes = typeof s === "string" ? Buffer.from(s, "utf8") : s;
  return Buffer.concat([u32(bytes.length), bytes]);
}

export type TableInput = { [key: string]: string | boolean | number | Buffer | TableInput };

/**
 * A field table with the few types a fake server needs: string -> S, boolean -> t,
 * integer -> I (int32), Buffer -> x, nested object -> F.
 */
export function table(fields: TableInput): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(fields)) {
    parts.push(shortstr(key));
    if (typeof value === "string") parts.push(Buffer.from("S"), longstr(value));
    else if (typeof value === "boolean") parts.push(Buffer.from("t"), u8(value ? 1 : 0));
    else if (typeof value === "number") {
      const b = Buffer.alloc(4);
      b.writeInt32BE(value);
      parts.push(Buffer.from("I"), b);
    } else if (Buffer.isBuffer(value)) parts.push(Buffer.from("x"), longstr(value));
    else parts.push(Buffer.from("F"), table(value));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length), body]);
}

/** Any frame: type, channel, size, payload, 0xCE. `end` overrides the frame-end octet. */
export function rawFrame(type: number, channel: number, payload: Buffer, end = FRAME_END): Buffer {
  const head = Buffer.alloc(7);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, u8(end)]);
}

export function methodFrame(
  channel: number,
  classId: number,
  methodId: number,
  args: Buffer = Buffer.alloc(0),
): Buffer {
  return rawFrame(FRAME_METHOD, channel, Buffer.concat([u16(classId), u16(methodId), args]));
}

/** Content header: class-id, weight 0, body-size, property flags, property list (raw). */
export function headerFrame(
  channel: number,
  classId: number,
  bodySize: number | bigint,
  flags = 0,
  properties: Buffer = Buffer.alloc(0),
): Buffer {
  return rawFrame(FRAME_HEADER, channel, Buffer.concat([u16(classId), u16(0), u64(bodySize), u16(flags), properties]));
}

export function bodyFrame(channel: number, body: Buffer | string): Buffer {
  return rawFrame(FRAME_BODY, channel, typeof body === "string" ? Buffer.from(body) : body);
}

export function heartbeatFrame(): Buffer {
  return rawFrame(FRAME_HEARTBEAT, 0, Buffer.alloc(0));
}

/** connection.close: reply-code, reply-text, class-id, method-id. */
export function connectionCloseFrame(replyCode: number, replyText: string, classId = 0, methodId = 0): Buffer {
  return methodFrame(
    0,
    Connection.classId,
    Connection.close,
    Buffer.concat([u16(replyCode), shortstr(replyText), u16(classId), u16(methodId)]),
  );
}

export function connectionCloseOkFrame(): Buffer {
  return methodFrame(0, Connection.classId, Connection.closeOk);
}

// ---------------------------------------------------------------------------------------
// Decoding, by hand.

export type TableValue =
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | Date
  | null
  | { scale: number; value: number }
  | TableValue[]
  | { [key: string]: TableValue };

/** A read cursor over a buffer; throws a RangeError on underrun. */
export class Cursor {
  offset = 0;
  constructor(readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }
  private need(n: number): number {
    if (this.offset + n > this.buf.length)
      throw new RangeError(`need ${n} bytes at ${this.offset}, have ${this.remaining}`);
    const at = this.offset;
    this.offset += n;
    return at;
  }
  u8(): number {
    return this.buf.readUInt8(this.need(1));
  }
  u16(): number {
    return this.buf.readUInt16BE(this.need(2));
  }
  u32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }
  u64(): bigint {
    return this.buf.readBigUInt64BE(this.need(8));
  }
  bytes(n: number): Buffer {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }
  shortstr(): string {
    return this.bytes(this.u8()).toString("utf8");
  }
  longstr(): Buffer {
    return this.bytes(this.u32());
  }
  table(): { [key: string]: TableValue } {
    const inner = new Cursor(this.longstr());
    const out: { [key: string]: TableValue } = {};
    while (inner.remaining > 0) {
      const key = inner.shortstr();
      out[key] = inner.fieldValue();
    }
    return out;
  }
  /** One tagged field value, with the tags RabbitMQ uses (its errata to 0-9-1). */
  fieldValue(): TableValue {
    const tag = String.fromCharCode(this.u8());
    switch (tag) {
      case "t":
        return this.u8() !== 0;
      case "b":
        return this.buf.readInt8(this.need(1));
      case "B":
        return this.u8();
      case "s":
        return this.buf.readInt16BE(this.need(2));
      case "u":
        return this.u16();
      case "I":
        return this.buf.readInt32BE(this.need(4));
      case "i":
        return this.u32();
      case "l":
        return this.buf.readBigInt64BE(this.need(8));
      case "f":
        return this.buf.readFloatBE(this.need(4));
      case "d":
        return this.buf.readDoubleBE(this.need(8));
      case "D": {
        const scale = this.u8();
        return { scale, value: this.buf.readInt32BE(this.need(4)) };
      }
      case "S":
        return this.longstr().toString("utf8");
      case "x":
        return this.longstr();
      case "T":
        return new Date(Number(this.u64()) * 1000);
      case "F":
        return this.table();
      case "A": {
        const inner = new Cursor(this.longstr());
        const items: TableValue[] = [];
        while (inner.remaining > 0) items.push(inner.fieldValue());
        return items;
      }
      case "V":
        return null;
      default:
        throw new RangeError(`unknown field type tag ${JSON.stringify(tag)} at ${this.offset - 1}`);
    }
  }
}

/** Splits a method frame's payload into class-id, method-id and arguments. */
export function asMethod(frame: RawFrame): MethodFrame {
  if (frame.type !== FRAME_METHOD) throw new Error(`expected a method frame, got frame type ${frame.type}`);
  if (frame.payload.length < 4) throw new Error(`method frame payload too short (${frame.payload.length} bytes)`);
  return {
    ...frame,
    classId: frame.payload.readUInt16BE(0),
    methodId: frame.payload.readUInt16BE(2),
    args: frame.payload.subarray(4),
  };
}

/**
 * Parses every complete frame at the start of `buf`. Returns them and the number of bytes
 * used; throws if a frame's end octet is not 0xCE.
 */
export function parseFrames(buf: Buffer): { frames: RawFrame[]; used: number } {
  const frames: RawFrame[] = [];
  let at = 0;
  while (buf.length - at >= 7) {
    const size = buf.readUInt32BE(at + 3);
    if (buf.length - at < size + 8) break;
    const end = buf[at + 7 + size];
    if (end !== FRAME_END)
      throw new Error(`bad frame-end octet 0x${(end ?? 0).toString(16)} at offset ${at + 7 + size}`);
    frames.push({
      type: buf.readUInt8(at),
      channel: buf.readUInt16BE(at + 1),
      payload: Buffer.from(buf.subarray(at + 7, at + 7 + size)),
    });
    at += size + 8;
  }
  return { frames, used: at };
}
