/**
 * Field tables and arrays (spec 4.2.5.5), with the type tags RabbitMQ actually uses. The
 * 0-9-1 spec's own tag list clashes with 0-9 and RabbitMQ follows its errata
 * ("AMQP 0-9-1 errata", section on field types):
 *
 *   t boolean   b int8    B uint8   s int16   u uint16   I int32   i uint32   l int64
 *   f float32   d float64 D decimal S longstr x bytes    A array   T timestamp (u64 seconds)
 *   F table     V void
 *
 * Encoding a JS value picks a tag:
 *
 *   JS value                                        tag  decodes back as
 *   boolean                                         t    boolean
 *   integer number in int32 range                   I    number
 *   other safe integer (|n| < 2^53)                 l    number
 *   any other number (fraction, NaN, +-Infinity,    d    number (exact: a double is a double,
 *     -0, integers beyond 2^53)                            so 2**60 stays 2**60)
 *   bigint (int64 range)                            l    bigint beyond 2^53, number within
 *   string                                          S    string (UTF-8 on the wire)
 *   Buffer / Uint8Array                             x    Buffer (a copy)
 *   Date                                            T    Date, whole seconds (the wire unit)
 *   null (and undefined inside an array)            V    null
 *   array                                           A    array
 *   Decimal                                         D    Decimal
 *   plain object                                    F    object
 *   typed(tag, value)                               tag  as that tag decodes
 *
 * A key whose value is undefined is left out, as JSON does. A value no tag can carry (a
 * function, a symbol, a number out of a forced tag's range, a cycle) is a TypeError or
 * RangeError naming its path, e.g. "headers.a.b", before anything is written.
 *
 * Decoding never rounds: b B s u I i f d give numbers, l a number when it is a safe integer
 * and a bigint otherwise, T a Date (beyond a Date's range, year 275760, typed("T", bigint)
 * with the exact seconds, which encodes to the same bytes again).
 *
 * Force a tag with typed(tag, value) where a peer expects a particular width: typed("l", 5)
 * for a 64-bit integer, typed("T", new Date()) or typed("T", seconds) for a
 * timestamp, typed("b" | "B" | "s" | "u" | "i", n) for the narrow integer types,
 * typed("f", x) for a float32, typed("S", buffer) for raw bytes sent as a long string.
 */
import { FrameError } from "./errors.js";
import type { Reader } from "./reader.js";
import { put32, type Writer } from "./writer.js";

/** A field value's type tag on the wire (RabbitMQ's table types, a superset of the spec's 4.2.5.5). */
export type FieldTag =
  "t" | "b" | "B" | "s" | "u" | "I" | "i" | "l" | "f" | "d" | "D" | "S" | "x" | "A" | "T" | "F" | "V";

/** A decimal: value * 10^-scale (scale an octet, value a signed 32-bit integer). */
export class Decimal {
  readonly scale: number;
  readonly value: number;
  constructor(scale: number, value: number) {
    this.scale = scale;
    this.value = value;
  }
  /** The value as a JS number (may lose precision). */
  toNumber(): number {
    return this.value / 10 ** this.scale;
  }
}

/** A value with its field tag chosen by the caller rather than by the default mapping. */
export class TypedValue {
  readonly tag: FieldTag;
  readonly value: FieldValue;
  constructor(tag: FieldTag, value: FieldValue) {
    this.tag = tag;
    this.value = value;
  }
}

/** What a field table holds: how JS values map to AMQP field types is in the README. */
export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | null
  | undefined
  | Decimal
  | TypedValue
  | FieldValue[]
  | FieldTable;

/** An AMQP field table (headers, arguments, client properties): names to values. */
export interface FieldTable {
  [key: string]: FieldValue;
}

/** Force a field tag: typed("l", 5) encodes 5 as a 64-bit integer, typed("T", new Date()) as a timestamp. */
export function typed(tag: FieldTag, value: FieldValue): TypedValue {
  return new TypedValue(tag, value);
}

/** Nesting this deep is refused on decode: a hostile peer must not blow the stack. */
const MAX_DEPTH = 100;

/** @internal The last second a JS Date can represent (ECMA-262 21.4.1.1: 8.64e15 ms after the epoch). */
export const MAX_DATE_SECONDS = 8_640_000_000_000;

// ---------------------------------------------------------------------------------------------
// encoding

/** @internal */
export function encodeTable(w: Writer, table: FieldTable | undefined, field = "table", depth = 0): void {
  w.ensure(4);
  const lenAt = w.mark();
  w.pos += 4;
  if (table != null) {
    if (typeof table !== "object" || Array.isArray(table)) throw new TypeError(`${field} must be a plain object`);
    if (depth > MAX_DEPTH) throw new RangeError(`${field} is nested more than ${MAX_DEPTH} deep`);
    for (const key in table) {
      if (!Object.prototype.hasOwnProperty.call(table, key)) continue;
      const v = table[key];
      if (v === undefined) continue;
      w.shortstr(key, field, " key");
      encodeValue(w, v, field, key, depth + 1);
    }
  }
  const at = w.at(lenAt);
  put32(w.buf, at, w.pos - at - 4);
}

function encodeArray(w: Writer, arr: FieldValue[], field: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new RangeError(`${field} is nested more than ${MAX_DEPTH} deep`);
  w.ensure(4);
  const lenAt = w.mark();
  w.pos += 4;
  for (let i = 0; i < arr.length; i++) encodeValue(w, arr[i] ?? null, field, i, depth + 1);
  const at = w.at(lenAt);
  put32(w.buf, at, w.pos - at - 4);
}

function tagOf(v: FieldValue): FieldTag {
  switch (typeof v) {
    case "boolean":
      return "t";
    case "number":
      if (Number.isInteger(v) && !Object.is(v, -0)) {
        if (v >= -0x80000000 && v <= 0x7fffffff) return "I";
        if (Number.isSafeInteger(v)) return "l";
      }
      return "d";
    case "bigint":
      return "l";
    case "string":
      return "S";
    case "object":
      if (v === null) return "V";
      if (v instanceof Uint8Array) return "x";
      if (v instanceof Date) return "T";
      if (Array.isArray(v)) return "A";
      if (v instanceof Decimal) return "D";
      return "F";
    case "undefined":
      return "V";
    default:
      throw new TypeError(`cannot encode a ${typeof v} in a field table`);
  }
}

/**
 * A value's name in errors: "headers.x-trace", "arguments.list[2]". Built only when an error is
 * thrown: a name per entry would be an allocation per header of every publish.
 */
function fieldName(parent: string, key: string | number): string {
  return typeof key === "number" ? `${parent}[${key}]` : `${parent}.${key}`;
}

/** One table entry's or array element's value, tag first; `parent` and `key` name it in errors. */
function encodeValue(w: Writer, v: FieldValue, parent: string, key: string | number, depth: number): void {
  let tag: FieldTag;
  if (v instanceof TypedValue) {
    tag = v.tag;
    v = v.value;
  } else {
    tag = tagOf(v);
  }
  w.ensure(1);
  w.buf[w.pos++] = tag.charCodeAt(0);
  // The writes after int() and the type checks cannot fail: the value is in range by then.
  switch (tag) {
    case "t":
      w.octet(v ? 1 : 0);
      return;
    case "b":
      w.ensure(1);
      w.buf.writeInt8(int(v, parent, key, -0x80, 0x7f), w.pos);
      w.pos += 1;
      return;
    case "B":
      w.octet(int(v, parent, key, 0, 0xff));
      return;
    case "s":
      w.ensure(2);
      w.buf.writeInt16BE(int(v, parent, key, -0x8000, 0x7fff), w.pos);
      w.pos += 2;
      return;
    case "u":
      w.short(int(v, parent, key, 0, 0xffff));
      return;
    case "I":
      w.ensure(4);
      w.buf.writeInt32BE(int(v, parent, key, -0x80000000, 0x7fffffff), w.pos);
      w.pos += 4;
      return;
    case "i":
      w.long(int(v, parent, key, 0, 0xffffffff));
      return;
    case "l": {
      const big = toBigInt(v, parent, key);
      if (big < -(2n ** 63n) || big >= 2n ** 63n)
        throw new RangeError(`${fieldName(parent, key)} does not fit a signed 64-bit integer`);
      w.ensure(8);
      w.buf.writeBigInt64BE(big, w.pos);
      w.pos += 8;
      return;
    }
    case "f":
      w.ensure(4);
      w.buf.writeFloatBE(num(v, parent, key), w.pos);
      w.pos += 4;
      return;
    case "d":
      w.ensure(8);
      w.buf.writeDoubleBE(num(v, parent, key), w.pos);
      w.pos += 8;
      return;
    case "D": {
      const field = fieldName(parent, key);
      if (!(v instanceof Decimal)) throw new TypeError(`${field} must be a Decimal for tag D`);
      w.octet(v.scale, `${field}.scale`);
      w.ensure(4);
      w.buf.writeInt32BE(int(v.value, field, "value", -0x80000000, 0x7fffffff), w.pos);
      w.pos += 4;
      return;
    }
    case "S":
      if (typeof v !== "string" && !(v instanceof Uint8Array))
        throw new TypeError(`${fieldName(parent, key)} must be a string for tag S`);
      w.longstr(v);
      return;
    case "x":
      if (!(v instanceof Uint8Array)) throw new TypeError(`${fieldName(parent, key)} must be a Buffer for tag x`);
      w.bytes4(v);
      return;
    case "A":
      if (!Array.isArray(v)) throw new TypeError(`${fieldName(parent, key)} must be an array for tag A`);
      encodeArray(w, v, fieldName(parent, key), depth);
      return;
    case "T": {
      const secs = v instanceof Date ? Math.floor(v.getTime() / 1000) : v;
      if (typeof secs === "number" && Number.isNaN(secs))
        throw new RangeError(`${fieldName(parent, key)} is an invalid Date`);
      if (typeof secs === "bigint") w.longlong(secs, fieldName(parent, key));
      else w.longlong(int(secs, parent, key, 0, Number.MAX_SAFE_INTEGER));
      return;
    }
    case "F":
      if (typeof v !== "object" || v === null || Array.isArray(v))
        throw new TypeError(`${fieldName(parent, key)} must be an object for tag F`);
      encodeTable(w, v as FieldTable, fieldName(parent, key), depth);
      return;
    case "V":
      return;
    default:
      throw new TypeError(`${fieldName(parent, key)}: unknown field tag ${JSON.stringify(tag)}`);
  }
}

function num(v: FieldValue, parent: string, key: string | number): number {
  if (typeof v !== "number") throw new TypeError(`${fieldName(parent, key)} must be a number`);
  return v;
}

function int(v: FieldValue, parent: string, key: string | number, min: number, max: number): number {
  if (typeof v === "bigint") v = Number(v);
  if (typeof v !== "number" || !Number.isInteger(v))
    throw new TypeError(`${fieldName(parent, key)} must be an integer`);
  if (v < min || v > max) throw new RangeError(`${fieldName(parent, key)} must be in ${min}..${max}, got ${v}`);
  return v;
}

function toBigInt(v: FieldValue, parent: string, key: string | number): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  throw new TypeError(`${fieldName(parent, key)} must be an integer or a bigint for tag l`);
}

// ---------------------------------------------------------------------------------------------
// decoding

/** @internal */
export function decodeTable(r: Reader, depth = 0): FieldTable {
  const len = r.long();
  r.need(len);
  const end = r.pos + len;
  const table: FieldTable = {};
  const outerEnd = r.end;
  r.end = end; // a value can never run past its table
  try {
    while (r.pos < end) {
      const key = r.shortstr();
      const value = decodeValue(r, depth + 1);
      // "__proto__" from the wire is an ordinary key: assigning it would replace the table's
      // prototype instead (and let a peer plant inherited properties on it).
      if (key === "__proto__")
        Object.defineProperty(table, key, { value, enumerable: true, writable: true, configurable: true });
      else table[key] = value;
    }
  } finally {
    r.end = outerEnd;
  }
  return table;
}

function decodeArray(r: Reader, depth: number): FieldValue[] {
  const len = r.long();
  r.need(len);
  const end = r.pos + len;
  const out: FieldValue[] = [];
  const outerEnd = r.end;
  r.end = end;
  try {
    while (r.pos < end) out.push(decodeValue(r, depth + 1));
  } finally {
    r.end = outerEnd;
  }
  return out;
}

function decodeValue(r: Reader, depth: number): FieldValue {
  if (depth > MAX_DEPTH) throw new FrameError(502, `field table nested more than ${MAX_DEPTH} deep`);
  const tag = r.octet();
  const buf = r.buf;
  switch (tag) {
    case 0x74: // t
      return r.octet() !== 0;
    case 0x62: // b
      r.need(1);
      return buf.readInt8(r.pos++);
    case 0x42: // B
      return r.octet();
    case 0x73: {
      // s
      r.need(2);
      const v = buf.readInt16BE(r.pos);
      r.pos += 2;
      return v;
    }
    case 0x75: // u
      return r.short();
    case 0x49: {
      // I
      r.need(4);
      const v = buf.readInt32BE(r.pos);
      r.pos += 4;
      return v;
    }
    case 0x69: // i
      return r.long();
    case 0x6c: {
      // l
      r.need(8);
      const v = buf.readBigInt64BE(r.pos);
      r.pos += 8;
      return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
    }
    case 0x66: {
      // f
      r.need(4);
      const v = buf.readFloatBE(r.pos);
      r.pos += 4;
      return v;
    }
    case 0x64: {
      // d
      r.need(8);
      const v = buf.readDoubleBE(r.pos);
      r.pos += 8;
      return v;
    }
    case 0x44: {
      // D
      const scale = r.octet();
      r.need(4);
      const v = buf.readInt32BE(r.pos);
      r.pos += 4;
      return new Decimal(scale, v);
    }
    case 0x53: // S
      return r.longstr();
    case 0x78: // x
      return Buffer.from(r.longbytes()); // a copy: the frame's buffer may be reused
    case 0x41: // A
      return decodeArray(r, depth);
    case 0x54: {
      // T
      r.need(8);
      const v = buf.readBigUInt64BE(r.pos);
      r.pos += 8;
      // A Date holds +-8.64e15 ms; beyond that it would be an Invalid Date, so the exact
      // seconds come back still tagged T, and encode to the same bytes again.
      return v <= MAX_DATE_SECONDS ? new Date(Number(v) * 1000) : new TypedValue("T", v);
    }
    case 0x46: // F
      return decodeTable(r, depth);
    case 0x56: // V
      return null;
    default:
      throw new FrameError(502, `unknown field-table type tag 0x${tag.toString(16)}`);
  }
}
