/**
 * The codec agrees with spec/amqp-0-9-1.json, byte for byte.
 *
 * spec/amqp-0-9-1.json is the protocol written down as data (see spec/README.md); src/protocol
 * is the code. This test keeps the two from drifting apart. For every method in the JSON it
 * builds a sample, encodes it with the codec's `encodeMethod`, and reads the bytes back with a
 * small decoder written here from the JSON alone: it knows the primitive types and the
 * bit-packing rule (spec 4.2.5.2), and nothing about any particular method. Then the codec's own
 * `decodeMethod` must give the sample back. It also checks, in both directions, the method ids,
 * the content-property flag order, the field-table type tags, the reply codes and the frame
 * constants.
 *
 * When this test fails, decide which side is wrong by the published spec and RabbitMQ's errata,
 * and fix that side; never loosen the test to fit.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  ClassId,
  Decimal,
  decodeMethod,
  encodeHeaderFrame,
  encodeMethod,
  FRAME_END,
  FRAME_MIN_SIZE,
  FrameError,
  FrameParser,
  FrameType,
  methodIds,
  PROTOCOL_HEADER,
  Reader,
  ReplyCode,
  typed,
  Writer,
} from "../../src/protocol/index.js";
import type { BasicProperties, FieldTable, FieldValue, Method } from "../../src/protocol/index.js";

// ---------------------------------------------------------------------------------------------
// The JSON, typed.

type Primitive = "bit" | "octet" | "short" | "long" | "longlong" | "shortstr" | "longstr" | "timestamp" | "table";
type Wire =
  | "boolean"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "float32"
  | "float64"
  | "decimal"
  | "longstr"
  | "bytes"
  | "array"
  | "timestamp"
  | "table"
  | "void";

interface SpecField {
  name: string;
  domain: string;
  type: Primitive;
  reserved?: boolean;
  formerly?: string;
}
interface SpecMethod {
  name: string;
  id: number;
  synchronous: boolean;
  responses: string[];
  content: boolean;
  direction: "client->server" | "server->client" | "both";
  note?: string;
  fields: SpecField[];
}
interface SpecProperty {
  name: string;
  domain: string;
  type: Primitive;
  flagBit: number;
}
interface SpecClass {
  name: string;
  id: number;
  properties?: SpecProperty[];
  methods: SpecMethod[];
}
interface SpecReplyCode {
  name: string;
  value: number;
  kind: "success" | "soft-error" | "hard-error";
  level: "channel" | "connection" | null;
  meaning: string;
}
interface SpecFieldTableType {
  tag: string;
  name: string;
  wire: Wire;
  size: number | null;
  encoding: string;
}
interface Spec {
  version: { major: number; minor: number; revision: number };
  protocolHeader: number[];
  frameTypes: { method: number; header: number; body: number; heartbeat: number };
  frameEnd: number;
  frameMinSize: number;
  primitiveTypes: Record<Primitive, { size: number | null; encoding: string }>;
  domains: Record<string, Primitive>;
  replyCodes: SpecReplyCode[];
  fieldTableTypes: SpecFieldTableType[];
  classes: SpecClass[];
}

const spec = JSON.parse(readFileSync(new URL("../../spec/amqp-0-9-1.json", import.meta.url), "utf8")) as Spec;

const allMethods: { cls: SpecClass; method: SpecMethod }[] = spec.classes.flatMap((cls) =>
  cls.methods.map((method) => ({ cls, method })),
);
const byName = new Map(allMethods.map((e) => [e.method.name, e]));

/** "routing-key" -> "routingKey"; "nowait" (confirm.select's spelling) -> "noWait", as the contract says. */
function camel(name: string): string {
  if (name === "nowait") return "noWait";
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

// ---------------------------------------------------------------------------------------------
// An independent decoder, driven by the JSON. It shares no code with src/protocol.

/** A value read from a field table, with the tag it was written with. */
interface Tagged {
  tag: string;
  value: unknown;
}

const tableTypeByTag = new Map(spec.fieldTableTypes.map((t) => [t.tag, t]));

class Cursor {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly end = buf.length,
  ) {}
  private need(n: number): void {
    if (this.pos + n > this.end)
      throw new Error(`spec decoder: needed ${n} bytes at ${this.pos}, only ${this.end - this.pos} left`);
  }
  take(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  u8(): number {
    return this.take(1).readUInt8(0);
  }
  u16(): number {
    return this.take(2).readUInt16BE(0);
  }
  u32(): number {
    return this.take(4).readUInt32BE(0);
  }
  u64(): bigint {
    return this.take(8).readBigUInt64BE(0);
  }
}

/** One primitive (not bit: bits are packed by `readFields`). */
function readPrimitive(c: Cursor, type: Exclude<Primitive, "bit">): unknown {
  switch (type) {
    case "octet":
      return c.u8();
    case "short":
      return c.u16();
    case "long":
      return c.u32();
    case "longlong":
      return c.u64();
    case "timestamp":
      return c.u64();
    case "shortstr":
      return c.take(c.u8()).toString("utf8");
    case "longstr":
      return c.take(c.u32()).toString("utf8");
    case "table":
      return readTable(c);
  }
}

function readTable(c: Cursor): Record<string, Tagged> {
  const len = c.u32();
  const inner = new Cursor(c.buf.subarray(0, c.pos + len), c.pos + len);
  inner.pos = c.pos;
  const out: Record<string, Tagged> = {};
  while (inner.pos < inner.end) {
    const key = inner.take(inner.u8()).toString("utf8");
    out[key] = readTagged(inner);
  }
  c.pos = inner.pos;
  return out;
}

/** A field value: its tag, then the encoding the JSON's fieldTableTypes gives for that tag. */
function readTagged(c: Cursor): Tagged {
  const tag = String.fromCharCode(c.u8());
  const type = tableTypeByTag.get(tag);
  if (type === undefined) throw new Error(`spec decoder: tag ${JSON.stringify(tag)} is not in fieldTableTypes`);
  return { tag, value: readWire(c, type.wire) };
}

function readWire(c: Cursor, wire: Wire): unknown {
  switch (wire) {
    case "boolean":
      return c.u8() !== 0;
    case "int8":
      return c.take(1).readInt8(0);
    case "uint8":
      return c.u8();
    case "int16":
      return c.take(2).readInt16BE(0);
    case "uint16":
      return c.u16();
    case "int32":
      return c.take(4).readInt32BE(0);
    case "uint32":
      return c.u32();
    case "int64":
      return c.take(8).readBigInt64BE(0);
    case "float32":
      return c.take(4).readFloatBE(0);
    case "float64":
      return c.take(8).readDoubleBE(0);
    case "decimal":
      return { scale: c.u8(), value: c.take(4).readInt32BE(0) };
    case "longstr":
      return c.take(c.u32()).toString("utf8");
    case "bytes":
      return Buffer.from(c.take(c.u32()));
    case "array": {
      const len = c.u32();
      const end = c.pos + len;
      const inner = new Cursor(c.buf.subarray(0, end), end);
      inner.pos = c.pos;
      const out: Tagged[] = [];
      while (inner.pos < inner.end) out.push(readTagged(inner));
      c.pos = inner.pos;
      return out;
    }
    case "timestamp":
      return c.u64();
    case "table":
      return readTable(c);
    case "void":
      return null;
  }
}

interface DecodedField {
  name: string;
  type: Primitive;
  value: unknown;
}

/**
 * A method's arguments in the JSON's order. Consecutive bit fields share one octet, the first
 * in the least significant bit; any other field, or an eighth bit, closes the octet (4.2.5.2).
 * Bits of a packed octet that no field owns must be zero.
 */
function readFields(c: Cursor, fields: readonly SpecField[]): DecodedField[] {
  const out: DecodedField[] = [];
  let octet = 0;
  let used = 8; // bits consumed from `octet`; 8 = none open
  const closeOctet = () => {
    if (used < 8 && octet >> used !== 0)
      throw new Error(`spec decoder: bits above bit ${used - 1} set in a packed octet (0x${octet.toString(16)})`);
    used = 8;
  };
  for (const f of fields) {
    if (f.type === "bit") {
      if (used === 8) {
        octet = c.u8();
        used = 0;
      }
      out.push({ name: f.name, type: f.type, value: ((octet >> used) & 1) === 1 });
      used++;
      continue;
    }
    closeOctet();
    out.push({ name: f.name, type: f.type, value: readPrimitive(c, f.type) });
  }
  closeOctet();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Samples.

/**
 * A sample value for each non-reserved field. Values differ from field to field (so two fields
 * of one type swapped is caught), use more than one byte (so byte order is caught), and strings
 * hold a non-ASCII character (so a length counted in characters rather than bytes is caught).
 * `bits` chooses which bit fields are set: one sample per bit, so a bit in the wrong position
 * shows.
 */
function sampleArgs(m: SpecMethod, bitsSet: ReadonlySet<string>): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  m.fields.forEach((f, i) => {
    if (f.reserved) return;
    args[camel(f.name)] = sampleValue(f, i, m.name, bitsSet.has(f.name));
  });
  return args;
}

function sampleValue(f: SpecField, i: number, method: string, bit: boolean): unknown {
  switch (f.type) {
    case "bit":
      return bit;
    case "octet":
      return 0x80 + i;
    case "short":
      return 0x1200 + 0x11 * i;
    case "long":
      return 0x81020300 + i;
    case "longlong":
      return 2 ** 40 + 0x0102 * (i + 1);
    case "shortstr":
      return `${f.name}·${method}`;
    case "longstr":
      return `${f.name} of ${method}: é ✓`;
    case "table":
      return { field: f.name, n: 1000 + i, yes: true } satisfies FieldTable;
    case "timestamp":
      throw new Error("no method field is a timestamp");
  }
}

/** What the spec decoder should read for a sample value: reserved fields are zero or empty. */
function expectedWire(f: SpecField, args: Record<string, unknown>): unknown {
  if (f.reserved) {
    switch (f.type) {
      case "bit":
        return false;
      case "shortstr":
      case "longstr":
        return "";
      case "longlong":
      case "timestamp":
        return 0n;
      case "table":
        return {};
      default:
        return 0;
    }
  }
  const v = args[camel(f.name)];
  if (f.type === "longlong") return BigInt(v as number);
  if (f.type === "table") {
    // The contract's default mapping: string -> S, int32 number -> I, boolean -> t.
    const t = v as { field: string; n: number; yes: boolean };
    return { field: { tag: "S", value: t.field }, n: { tag: "I", value: t.n }, yes: { tag: "t", value: t.yes } };
  }
  return v;
}

function encode(m: Method): Buffer {
  const w = new Writer();
  encodeMethod(w, m);
  return Buffer.from(w.take());
}

// ---------------------------------------------------------------------------------------------

describe("spec/amqp-0-9-1.json is consistent with itself", () => {
  it("is version 0-9-1 with the frame constants of the spec", () => {
    expect(spec.version).toEqual({ major: 0, minor: 9, revision: 1 });
    expect(Buffer.from(spec.protocolHeader).toString("latin1")).toBe("AMQP\x00\x00\x09\x01");
    expect(spec.frameTypes).toEqual({ method: 1, header: 2, body: 3, heartbeat: 8 });
    expect(spec.frameEnd).toBe(0xce);
    expect(spec.frameMinSize).toBe(4096);
  });

  it("gives every field a known domain whose primitive type is the field's type", () => {
    const primitives = Object.keys(spec.primitiveTypes);
    for (const [domain, type] of Object.entries(spec.domains)) expect(primitives, domain).toContain(type);
    for (const { method } of allMethods) {
      const names = method.fields.map((f) => f.name);
      expect(new Set(names).size, `${method.name}: duplicate field names`).toBe(names.length);
      for (const f of method.fields) {
        expect(spec.domains[f.domain], `${method.name} ${f.name}: domain ${f.domain}`).toBe(f.type);
        if (f.reserved) expect(f.name, `${method.name}: reserved fields are named reserved-N`).toMatch(/^reserved-\d$/);
      }
    }
  });

  it("has the seven classes warren speaks, with unique method ids", () => {
    expect(spec.classes.map((c) => [c.name, c.id])).toEqual([
      ["connection", 10],
      ["channel", 20],
      ["exchange", 40],
      ["queue", 50],
      ["basic", 60],
      ["confirm", 85],
      ["tx", 90],
    ]);
    for (const cls of spec.classes) {
      const ids = cls.methods.map((m) => m.id);
      expect(new Set(ids).size, `${cls.name}: duplicate method ids`).toBe(ids.length);
      for (const m of cls.methods) expect(m.name.startsWith(`${cls.name}.`), m.name).toBe(true);
    }
  });

  it("names responses that exist in the same class, and only for synchronous methods", () => {
    for (const { cls, method } of allMethods) {
      for (const r of method.responses) {
        expect(byName.get(r)?.cls.name, `${method.name} -> ${r}`).toBe(cls.name);
        expect(method.synchronous, `${method.name} has responses but is not synchronous`).toBe(true);
      }
    }
    expect(byName.get("basic.get")?.method.responses).toEqual(["basic.get-ok", "basic.get-empty"]);
    expect(byName.get("queue.declare")?.method.responses).toEqual(["queue.declare-ok"]);
  });

  it("marks exactly the four content-carrying methods", () => {
    expect(allMethods.filter((e) => e.method.content).map((e) => e.method.name)).toEqual([
      "basic.publish",
      "basic.return",
      "basic.deliver",
      "basic.get-ok",
    ]);
  });

  it("lists the 14 basic properties in flag order, bit 15 first", () => {
    const props = spec.classes.find((c) => c.name === "basic")?.properties ?? [];
    expect(props.map((p) => p.name)).toEqual([
      "content-type",
      "content-encoding",
      "headers",
      "delivery-mode",
      "priority",
      "correlation-id",
      "reply-to",
      "expiration",
      "message-id",
      "timestamp",
      "type",
      "user-id",
      "app-id",
      "cluster-id",
    ]);
    props.forEach((p, i) => {
      expect(p.flagBit, p.name).toBe(15 - i);
      expect(spec.domains[p.domain], p.name).toBe(p.type);
    });
  });

  it("classes reply codes by the level they close", () => {
    for (const r of spec.replyCodes) {
      const expected = r.kind === "soft-error" ? "channel" : r.kind === "hard-error" ? "connection" : null;
      expect(r.level, r.name).toBe(expected);
    }
  });
});

describe("the codec's constants agree with the spec", () => {
  it("frame types, frame end, frame-min-size, protocol header", () => {
    expect(FrameType).toEqual({
      Method: spec.frameTypes.method,
      Header: spec.frameTypes.header,
      Body: spec.frameTypes.body,
      Heartbeat: spec.frameTypes.heartbeat,
    });
    expect(FRAME_END).toBe(spec.frameEnd);
    expect(FRAME_MIN_SIZE).toBe(spec.frameMinSize);
    expect([...PROTOCOL_HEADER]).toEqual(spec.protocolHeader);
  });

  it("class ids", () => {
    expect(ClassId).toEqual(Object.fromEntries(spec.classes.map((c) => [c.name, c.id])));
  });

  it("reply codes: the same names and values, both ways", () => {
    const fromSpec = Object.fromEntries(spec.replyCodes.map((r) => [r.name.toUpperCase().replace(/-/g, "_"), r.value]));
    expect({ ...ReplyCode }).toEqual(fromSpec);
  });
});

describe("the codec's methods are the spec's methods", () => {
  it("every method in methodIds is in the JSON with the same ids, and vice versa", () => {
    const fromSpec = Object.fromEntries(allMethods.map(({ cls, method }) => [method.name, [cls.id, method.id]]));
    const fromCodec = Object.fromEntries(Object.entries(methodIds).map(([name, ids]) => [name, [...ids]]));
    expect(
      Object.keys(fromCodec).filter((n) => !(n in fromSpec)),
      "in the codec, not in the JSON",
    ).toEqual([]);
    expect(
      Object.keys(fromSpec).filter((n) => !(n in fromCodec)),
      "in the JSON, not in the codec",
    ).toEqual([]);
    expect(fromCodec).toEqual(fromSpec);
  });

  it("decodeMethod refuses, with a FrameError, every id the JSON does not define", () => {
    // The JSON's classes plus the ones 0-9-1 defines and RabbitMQ does not speak
    // (access 30, file 70, stream 80, dtx 100, tunnel 110), and two that never existed.
    const classIds = [...spec.classes.map((c) => c.id), 0, 30, 70, 80, 100, 110, 65535];
    const known = new Set(allMethods.map(({ cls, method }) => `${cls.id}.${method.id}`));
    const accepted: string[] = [];
    for (const classId of classIds) {
      for (let methodId = 0; methodId <= 130; methodId++) {
        if (known.has(`${classId}.${methodId}`)) continue;
        const bytes = Buffer.alloc(4);
        bytes.writeUInt16BE(classId, 0);
        bytes.writeUInt16BE(methodId, 2);
        try {
          decodeMethod(new Reader(bytes));
          accepted.push(`${classId}.${methodId}`);
        } catch (e) {
          expect(e, `${classId}.${methodId}`).toBeInstanceOf(FrameError);
        }
      }
    }
    expect(accepted, "ids the codec decodes but the JSON does not define").toEqual([]);
  });
});

describe.each(allMethods.map((e) => [e.method.name, e] as const))("%s", (_name, { cls, method }) => {
  const bitFields = method.fields.filter((f) => f.type === "bit" && !f.reserved).map((f) => f.name);
  // No bit set, then each bit alone: a bit written at the wrong position shows in its own sample.
  const variants: [string, ReadonlySet<string>][] = [
    ["no bits set", new Set()],
    ...bitFields.map((b): [string, ReadonlySet<string>] => [`only ${b} set`, new Set([b])]),
  ];

  it.each(variants)("encodes as the spec lays it out (%s)", (_label, bitsSet) => {
    const args = sampleArgs(method, bitsSet);
    const bytes = encode({ name: method.name, ...args } as unknown as Method);

    const c = new Cursor(bytes);
    expect(c.u16(), "class id").toBe(cls.id);
    expect(c.u16(), "method id").toBe(method.id);
    const decoded = readFields(c, method.fields);
    expect(c.end - c.pos, "bytes left after the last field").toBe(0);

    // Field order and types come from the JSON (readFields walks it), so a codec that writes a
    // field out of order or at another width shows up as wrong values here, named by field.
    expect(decoded.map((d) => [d.name, d.type, d.value])).toEqual(
      method.fields.map((f) => [f.name, f.type, expectedWire(f, args)]),
    );
  });

  it.each(variants)("decodes back to the sample (%s)", (_label, bitsSet) => {
    const args = sampleArgs(method, bitsSet);
    const bytes = encode({ name: method.name, ...args } as unknown as Method);
    const r = new Reader(bytes);
    expect(decodeMethod(r)).toEqual({ name: method.name, ...args });
    expect(r.remaining, "bytes the codec left unread").toBe(0);
  });

  it("has only the JSON's non-reserved fields as properties", () => {
    const decoded = decodeMethod(
      new Reader(encode({ name: method.name, ...sampleArgs(method, new Set()) } as unknown as Method)),
    );
    const expected = ["name", ...method.fields.filter((f) => !f.reserved).map((f) => camel(f.name))];
    expect(Object.keys(decoded).sort()).toEqual(expected.sort());
  });
});

describe("content properties agree with the spec's flag order", () => {
  const props = spec.classes.find((c) => c.name === "basic")?.properties ?? [];

  function sampleProperty(p: SpecProperty, i: number): unknown {
    switch (p.type) {
      case "shortstr":
        return `${p.name}·${i}`;
      case "octet":
        return i; // delivery-mode 3, priority 4: any octet will do for the codec
      case "table":
        return { property: p.name, n: 7 } satisfies FieldTable;
      case "timestamp":
        return new Date(1_700_000_000_000);
      default:
        throw new Error(`no sample for a ${p.type} property`);
    }
  }
  function expectedPropertyWire(p: SpecProperty, v: unknown): unknown {
    if (p.type === "timestamp") return BigInt((v as Date).getTime() / 1000);
    if (p.type === "table") return { property: { tag: "S", value: p.name }, n: { tag: "I", value: 7 } };
    return v;
  }

  /** Encode a header frame and return its property flags and the bytes of its property list. */
  function headerFrame(properties: BasicProperties): { flags: number; c: Cursor; frame: Buffer } {
    const w = new Writer();
    encodeHeaderFrame(w, 1, 60, 5, properties);
    const frame = Buffer.from(w.take());
    const c = new Cursor(frame, frame.length - 1);
    expect(c.u8(), "frame type").toBe(spec.frameTypes.header);
    expect(c.u16(), "channel").toBe(1);
    expect(c.u32(), "payload size").toBe(frame.length - 8);
    expect(frame[frame.length - 1], "frame end").toBe(spec.frameEnd);
    expect(c.u16(), "class id").toBe(60);
    expect(c.u16(), "weight").toBe(0);
    expect(c.u64(), "body size").toBe(5n);
    return { flags: c.u16(), c, frame };
  }

  function decodeWithCodec(frame: Buffer): BasicProperties {
    const parser = new FrameParser();
    parser.push(frame);
    const f = parser.next();
    if (f?.type !== 2) throw new Error("expected a header frame");
    return f.properties;
  }

  it.each(props.map((p, i) => [p.name, p, i] as const))("%s alone sets its flag bit and nothing else", (_n, p, i) => {
    const value = sampleProperty(p, i);
    const properties = { [camel(p.name)]: value } as BasicProperties;
    const { flags, c, frame } = headerFrame(properties);
    expect(flags.toString(2).padStart(16, "0"), "property flags").toBe((1 << p.flagBit).toString(2).padStart(16, "0"));
    expect(readPrimitive(c, p.type as Exclude<Primitive, "bit">)).toEqual(expectedPropertyWire(p, value));
    expect(c.end - c.pos, "bytes left in the property list").toBe(0);
    expect(decodeWithCodec(frame)).toEqual(properties);
  });

  it("all 14 together are written in flag order", () => {
    const values = props.map((p, i) => sampleProperty(p, i));
    const properties = Object.fromEntries(props.map((p, i) => [camel(p.name), values[i]])) as BasicProperties;
    const { flags, c, frame } = headerFrame(properties);
    expect(flags).toBe(props.reduce((acc, p) => acc | (1 << p.flagBit), 0));
    const read = props.map((p) => readPrimitive(c, p.type as Exclude<Primitive, "bit">));
    expect(read).toEqual(props.map((p, i) => expectedPropertyWire(p, values[i])));
    expect(c.end - c.pos, "bytes left in the property list").toBe(0);
    expect(decodeWithCodec(frame)).toEqual(properties);
  });

  it("no properties is a zero flags word and nothing else", () => {
    const { flags, c } = headerFrame({});
    expect(flags).toBe(0);
    expect(c.end - c.pos).toBe(0);
  });
});

describe("field-table types agree with the spec's fieldTableTypes", () => {
  /**
   * One value per tag: what to hand the codec, what the spec decoder must read, and what the
   * codec's decoder must give back (per the contract's decoding rules). Values sit where
   * signedness and width matter: a signed type gets a negative, an unsigned one a value above
   * the signed maximum.
   */
  const date = new Date(1_700_000_000_000);
  const cases: Record<string, { encode: FieldValue; wire: unknown; decoded: FieldValue }> = {
    t: { encode: typed("t", true), wire: true, decoded: true },
    b: { encode: typed("b", -3), wire: -3, decoded: -3 },
    B: { encode: typed("B", 250), wire: 250, decoded: 250 },
    s: { encode: typed("s", -300), wire: -300, decoded: -300 },
    u: { encode: typed("u", 60000), wire: 60000, decoded: 60000 },
    I: { encode: typed("I", -70000), wire: -70000, decoded: -70000 },
    i: { encode: typed("i", 3_000_000_000), wire: 3_000_000_000, decoded: 3_000_000_000 },
    l: { encode: typed("l", -(2 ** 40)), wire: -(2n ** 40n), decoded: -(2 ** 40) },
    f: { encode: typed("f", 1.5), wire: 1.5, decoded: 1.5 },
    d: { encode: typed("d", 0.1), wire: 0.1, decoded: 0.1 },
    D: { encode: new Decimal(2, -12345), wire: { scale: 2, value: -12345 }, decoded: new Decimal(2, -12345) },
    S: { encode: typed("S", "é ✓"), wire: "é ✓", decoded: "é ✓" },
    x: {
      encode: Buffer.from([0, 1, 0xfe, 0xff]),
      wire: Buffer.from([0, 1, 0xfe, 0xff]),
      decoded: Buffer.from([0, 1, 0xfe, 0xff]),
    },
    A: {
      encode: [1, "a", true],
      wire: [
        { tag: "I", value: 1 },
        { tag: "S", value: "a" },
        { tag: "t", value: true },
      ],
      decoded: [1, "a", true],
    },
    T: { encode: date, wire: BigInt(date.getTime() / 1000), decoded: date },
    F: { encode: { k: "v" }, wire: { k: { tag: "S", value: "v" } }, decoded: { k: "v" } },
    V: { encode: null, wire: null, decoded: null },
  };

  it("the JSON lists exactly the tags RabbitMQ uses", () => {
    expect(spec.fieldTableTypes.map((t) => t.tag).join("")).toBe("tbBsuIilfdDSxATFV");
    for (const t of spec.fieldTableTypes) {
      if (t.size !== null && t.wire !== "decimal") {
        // Fixed sizes: the spec decoder reads exactly `size` bytes for the tag's wire type.
        const c = new Cursor(Buffer.alloc(16));
        readWire(c, t.wire);
        expect(c.pos, t.tag).toBe(t.size);
      }
    }
  });

  it.each(spec.fieldTableTypes.map((t) => [t.tag, t] as const))(
    "tag %s: the codec writes the JSON's encoding and reads it back",
    (tag, t) => {
      const kase = cases[tag];
      if (kase === undefined) throw new Error(`no sample for tag ${tag}: add one`);
      const args: FieldTable = { v: kase.encode };
      const bytes = encode({
        name: "queue.declare",
        queue: "q",
        passive: false,
        durable: false,
        exclusive: false,
        autoDelete: false,
        noWait: false,
        arguments: args,
      });

      const c = new Cursor(bytes);
      c.take(4); // class and method ids
      const fields = readFields(c, byName.get("queue.declare")?.method.fields ?? []);
      const table = fields.at(-1)?.value as Record<string, Tagged>;
      expect(table.v?.tag, `${t.name} is written with tag ${tag}`).toBe(tag);
      expect(table.v?.value).toEqual(kase.wire);

      const decoded = decodeMethod(new Reader(bytes));
      expect(decoded.name === "queue.declare" && decoded.arguments.v).toEqual(kase.decoded);
    },
  );
});
