/**
 * Every method of the classes connection, channel, exchange, queue, basic, confirm and tx, as
 * RabbitMQ speaks 0-9-1 (including its extensions: connection.blocked/unblocked/update-secret,
 * exchange.bind/unbind, basic.nack, confirm).
 *
 * METHODS below is the one description in code: the `Method` union type is derived from it,
 * and so are the encoder and decoder of each method (compiled once, at load, into straight-line
 * functions, so no table is interpreted per message). spec/amqp-0-9-1.json is the protocol as
 * data; test/protocol/spec-agreement.test.ts checks the two agree field by field.
 *
 * A field named null is reserved (ticket, reserved-1, ...): written as zero or empty, skipped
 * on read, never seen by the API. Consecutive bit fields share one octet, first bit lowest
 * (spec 4.2.5.2).
 */
import { FrameError } from "./errors.js";
import { decodeTable, encodeTable, type FieldTable } from "./table.js";
import { Reader } from "./reader.js";
import type { Writer } from "./writer.js";

type Domain = "octet" | "short" | "long" | "longlong" | "shortstr" | "longstr" | "bit" | "table";
type FieldDef = readonly [name: string | null, domain: Domain];
type MethodDef = readonly [classId: number, methodId: number, fields: readonly FieldDef[]];

const R = null;
const closeFields = [
  ["replyCode", "short"],
  ["replyText", "shortstr"],
  ["classId", "short"],
  ["methodId", "short"],
] as const;
const bindFields = [
  [R, "short"],
  ["destination", "shortstr"],
  ["source", "shortstr"],
  ["routingKey", "shortstr"],
  ["noWait", "bit"],
  ["arguments", "table"],
] as const;

export const METHODS = {
  "connection.start": [
    10,
    10,
    [
      ["versionMajor", "octet"],
      ["versionMinor", "octet"],
      ["serverProperties", "table"],
      ["mechanisms", "longstr"],
      ["locales", "longstr"],
    ],
  ],
  "connection.start-ok": [
    10,
    11,
    [
      ["clientProperties", "table"],
      ["mechanism", "shortstr"],
      ["response", "longstr"],
      ["locale", "shortstr"],
    ],
  ],
  "connection.secure": [10, 20, [["challenge", "longstr"]]],
  "connection.secure-ok": [10, 21, [["response", "longstr"]]],
  "connection.tune": [
    10,
    30,
    [
      ["channelMax", "short"],
      ["frameMax", "long"],
      ["heartbeat", "short"],
    ],
  ],
  "connection.tune-ok": [
    10,
    31,
    [
      ["channelMax", "short"],
      ["frameMax", "long"],
      ["heartbeat", "short"],
    ],
  ],
  "connection.open": [
    10,
    40,
    [
      ["virtualHost", "shortstr"],
      [R, "shortstr"],
      [R, "bit"],
    ],
  ],
  "connection.open-ok": [10, 41, [[R, "shortstr"]]],
  "connection.close": [10, 50, closeFields],
  "connection.close-ok": [10, 51, []],
  "connection.blocked": [10, 60, [["reason", "shortstr"]]],
  "connection.unblocked": [10, 61, []],
  "connection.update-secret": [
    10,
    70,
    [
      ["newSecret", "longstr"],
      ["reason", "shortstr"],
    ],
  ],
  "connection.update-secret-ok": [10, 71, []],

  "channel.open": [20, 10, [[R, "shortstr"]]],
  "channel.open-ok": [20, 11, [[R, "longstr"]]],
  "channel.flow": [20, 20, [["active", "bit"]]],
  "channel.flow-ok": [20, 21, [["active", "bit"]]],
  "channel.close": [20, 40, closeFields],
  "channel.close-ok": [20, 41, []],

  "exchange.declare": [
    40,
    10,
    [
      [R, "short"],
      ["exchange", "shortstr"],
      ["type", "shortstr"],
      ["passive", "bit"],
      ["durable", "bit"],
      ["autoDelete", "bit"],
      ["internal", "bit"],
      ["noWait", "bit"],
      ["arguments", "table"],
    ],
  ],
  "exchange.declare-ok": [40, 11, []],
  "exchange.delete": [
    40,
    20,
    [
      [R, "short"],
      ["exchange", "shortstr"],
      ["ifUnused", "bit"],
      ["noWait", "bit"],
    ],
  ],
  "exchange.delete-ok": [40, 21, []],
  "exchange.bind": [40, 30, bindFields],
  "exchange.bind-ok": [40, 31, []],
  "exchange.unbind": [40, 40, bindFields],
  "exchange.unbind-ok": [40, 51, []], // 51, not 41: RabbitMQ's extension numbers it so

  "queue.declare": [
    50,
    10,
    [
      [R, "short"],
      ["queue", "shortstr"],
      ["passive", "bit"],
      ["durable", "bit"],
      ["exclusive", "bit"],
      ["autoDelete", "bit"],
      ["noWait", "bit"],
      ["arguments", "table"],
    ],
  ],
  "queue.declare-ok": [
    50,
    11,
    [
      ["queue", "shortstr"],
      ["messageCount", "long"],
      ["consumerCount", "long"],
    ],
  ],
  "queue.bind": [
    50,
    20,
    [
      [R, "short"],
      ["queue", "shortstr"],
      ["exchange", "shortstr"],
      ["routingKey", "shortstr"],
      ["noWait", "bit"],
      ["arguments", "table"],
    ],
  ],
  "queue.bind-ok": [50, 21, []],
  "queue.purge": [
    50,
    30,
    [
      [R, "short"],
      ["queue", "shortstr"],
      ["noWait", "bit"],
    ],
  ],
  "queue.purge-ok": [50, 31, [["messageCount", "long"]]],
  "queue.delete": [
    50,
    40,
    [
      [R, "short"],
      ["queue", "shortstr"],
      ["ifUnused", "bit"],
      ["ifEmpty", "bit"],
      ["noWait", "bit"],
    ],
  ],
  "queue.delete-ok": [50, 41, [["messageCount", "long"]]],
  "queue.unbind": [
    50,
    50,
    [
      [R, "short"],
      ["queue", "shortstr"],
      ["exchange", "shortstr"],
      ["routingKey", "shortstr"],
      ["arguments", "table"],
    ],
  ],
  "queue.unbind-ok": [50, 51, []],

  "basic.qos": [
    60,
    10,
    [
      ["prefetchSize", "long"],
      ["prefetchCount", "short"],
      ["global", "bit"],
    ],
  ],
  "basic.qos-ok": [60, 11, []],
  "basic.consume": [
    60,
    20,
    [
      [R, "short"],
      ["queue", "shortstr"],
      ["consumerTag", "shortstr"],
      ["noLocal", "bit"],
      ["noAck", "bit"],
      ["exclusive", "bit"],
      ["noWait", "bit"],
      ["arguments", "table"],
    ],
  ],
  "basic.consume-ok": [60, 21, [["consumerTag", "shortstr"]]],
  "basic.cancel": [
    60,
    30,
    [
      ["consumerTag", "shortstr"],
      ["noWait", "bit"],
    ],
  ],
  "basic.cancel-ok": [60, 31, [["consumerTag", "shortstr"]]],
  "basic.publish": [
    60,
    40,
    [
      [R, "short"],
      ["exchange", "shortstr"],
      ["routingKey", "shortstr"],
      ["mandatory", "bit"],
      ["immediate", "bit"],
    ],
  ],
  "basic.return": [
    60,
    50,
    [
      ["replyCode", "short"],
      ["replyText", "shortstr"],
      ["exchange", "shortstr"],
      ["routingKey", "shortstr"],
    ],
  ],
  "basic.deliver": [
    60,
    60,
    [
      ["consumerTag", "shortstr"],
      ["deliveryTag", "longlong"],
      ["redelivered", "bit"],
      ["exchange", "shortstr"],
      ["routingKey", "shortstr"],
    ],
  ],
  "basic.get": [
    60,
    70,
    [
      [R, "short"],
      ["queue", "shortstr"],
      ["noAck", "bit"],
    ],
  ],
  "basic.get-ok": [
    60,
    71,
    [
      ["deliveryTag", "longlong"],
      ["redelivered", "bit"],
      ["exchange", "shortstr"],
      ["routingKey", "shortstr"],
      ["messageCount", "long"],
    ],
  ],
  "basic.get-empty": [60, 72, [[R, "shortstr"]]],
  "basic.ack": [
    60,
    80,
    [
      ["deliveryTag", "longlong"],
      ["multiple", "bit"],
    ],
  ],
  "basic.reject": [
    60,
    90,
    [
      ["deliveryTag", "longlong"],
      ["requeue", "bit"],
    ],
  ],
  "basic.recover-async": [60, 100, [["requeue", "bit"]]],
  "basic.recover": [60, 110, [["requeue", "bit"]]],
  "basic.recover-ok": [60, 111, []],
  "basic.nack": [
    60,
    120,
    [
      ["deliveryTag", "longlong"],
      ["multiple", "bit"],
      ["requeue", "bit"],
    ],
  ],

  "confirm.select": [85, 10, [["noWait", "bit"]]],
  "confirm.select-ok": [85, 11, []],

  "tx.select": [90, 10, []],
  "tx.select-ok": [90, 11, []],
  "tx.commit": [90, 20, []],
  "tx.commit-ok": [90, 21, []],
  "tx.rollback": [90, 30, []],
  "tx.rollback-ok": [90, 31, []],
} as const satisfies Record<string, MethodDef>;

type Defs = typeof METHODS;
export type MethodName = keyof Defs;

type JsType<D> = D extends "shortstr" | "longstr"
  ? string
  : D extends "bit"
    ? boolean
    : D extends "table"
      ? FieldTable
      : number;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type ArgsOf<F extends readonly FieldDef[]> = Simplify<{
  [E in F[number] as E[0] extends string ? E[0] : never]: JsType<E[1]>;
}>;

/** The arguments of one method, without its name. */
export type MethodArgs<N extends MethodName> = ArgsOf<Defs[N][2]>;
/** One method: `{ name: "queue.declare", queue: "...", durable: true, ... }`. */
export type MethodOf<N extends MethodName> = Simplify<{ name: N } & MethodArgs<N>>;
/** Every method, discriminated by `name`. */
export type Method = { [N in MethodName]: MethodOf<N> }[MethodName];

/** @internal Class and method id of each method. */
export const methodIds = Object.fromEntries(
  Object.entries(METHODS).map(([name, [c, m]]) => [name, [c, m] as const]),
) as { readonly [N in MethodName]: readonly [classId: number, methodId: number] };

// ---------------------------------------------------------------------------------------------
// codegen: one encoder and one decoder per method, straight-line code built from METHODS.

type Encoder = (w: Writer, m: Method) => void;
type Decoder = (r: Reader) => Method;

function compileEncoder(name: string, [classId, methodId, fields]: MethodDef): Encoder {
  const lines = [
    `w.ensure(4); const b = w.buf, p = w.pos; b[p] = ${classId >> 8}; b[p + 1] = ${classId & 255}; b[p + 2] = ${methodId >> 8}; b[p + 3] = ${methodId & 255}; w.pos = p + 4;`,
  ];
  let bits: string[] = [];
  const flush = () => {
    if (bits.length) lines.push(`w.octet(${bits.join(" | ")});`);
    bits = [];
  };
  for (const [field, domain] of fields) {
    if (domain === "bit") {
      if (field !== null) bits.push(`(m.${field} ? ${1 << bits.length} : 0)`);
      else bits.push("0");
      continue;
    }
    flush();
    const label = JSON.stringify(`${name} ${field ?? "reserved"}`);
    if (field === null) {
      lines.push(domain === "short" ? "w.short(0);" : domain === "shortstr" ? "w.octet(0);" : "w.long(0);");
    } else if (domain === "table") {
      lines.push(`encodeTable(w, m.${field}, ${label});`);
    } else {
      lines.push(`w.${domain}(m.${field}, ${label});`);
    }
  }
  flush();
  return new Function("encodeTable", `return function encode(w, m) { ${lines.join("\n")} }`)(encodeTable) as Encoder;
}

function compileDecoder(name: string, [, , fields]: MethodDef): Decoder {
  const lines: string[] = [];
  const props = [`name: ${JSON.stringify(name)}`];
  let bit = 8;
  let octets = 0;
  for (const [field, domain] of fields) {
    if (domain === "bit") {
      if (bit === 8) {
        lines.push(`const b${++octets} = r.octet();`);
        bit = 0;
      }
      if (field !== null) props.push(`${field}: (b${octets} & ${1 << bit}) !== 0`);
      bit++;
      continue;
    }
    bit = 8;
    const read = domain === "table" ? "decodeTable(r)" : `r.${domain}()`;
    if (field === null) lines.push(`${read};`);
    else {
      lines.push(`const ${field} = ${read};`);
      props.push(field);
    }
  }
  const body = `${lines.join("\n")}\nreturn { ${props.join(", ")} };`;
  return new Function("decodeTable", `return function decode(r) { ${body} }`)(decodeTable) as Decoder;
}

// No prototype: a bad name such as "toString" must find no encoder, not Object.prototype's.
const encoders: Record<MethodName, Encoder> = Object.create(null);
const decoders = new Map<number, Decoder>();
for (const [name, def] of Object.entries(METHODS) as [MethodName, MethodDef][]) {
  encoders[name] = compileEncoder(name, def);
  decoders.set(((def[0] << 16) | def[1]) >>> 0, compileDecoder(name, def));
}

/**
 * @internal Writes class id, method id and arguments: a method frame's payload (4.2.4). A bad argument
 * throws a TypeError or RangeError naming the field; the caller rewinds the writer.
 */
export function encodeMethod(w: Writer, m: Method): void {
  const enc = encoders[m.name];
  if (enc === undefined) throw new TypeError(`unknown method ${String((m as { name: unknown }).name)}`);
  enc(w, m);
}

/**
 * @internal Reads a method frame's payload. An id 0-9-1 does not define (or RabbitMQ does not speak) is
 * 503 COMMAND_INVALID, whether or not its class is known: the peer sent a command we cannot
 * parse, and the spec's 540 NOT_IMPLEMENTED is the server's answer to a request it declines.
 */
export function decodeMethod(r: Reader): Method {
  const id = r.long();
  const dec = decoders.get(id);
  if (dec === undefined) throw new FrameError(503, `unknown method: class ${id >>> 16}, method ${id & 0xffff}`);
  return dec(r);
}

/** @internal Decode one method from a standalone buffer (tests, tracing). */
export function decodeMethodBytes(buf: Buffer): Method {
  return decodeMethod(new Reader(buf));
}
