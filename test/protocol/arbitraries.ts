/**
 * fast-check arbitraries for the codec's property tests, derived from the codec's own METHODS
 * table and property list, so a method or property added there is covered without touching
 * this file.
 *
 * Field-table values come as pairs [input, expected]: what a user passes to the encoder, and
 * what the decoder must give back under the mapping documented at the top of
 * src/protocol/table.ts (typed("b", 5) comes back as the number 5, a Date as a Date, ...).
 * The pairs are chosen so that the mapping is exact: nothing is rounded along the way.
 */
import fc from "fast-check";
import {
  Decimal,
  METHODS,
  PROPERTY_NAMES,
  typed,
  type BasicProperties,
  type FieldTable,
  type FieldValue,
  type Method,
  type MethodName,
} from "../../src/protocol/index.js";

// ---------------------------------------------------------------------------------------------
// strings

/** Any Unicode text (no lone surrogates: UTF-8 cannot carry them, so they cannot round-trip). */
export const text = (maxLength?: number) =>
  fc.string({ unit: "binary", ...(maxLength === undefined ? {} : { maxLength }) });

/**
 * A short string: at most 255 UTF-8 bytes. Either up to 63 code points of anything (4 bytes
 * each at worst), or ASCII right up to the 255-byte limit, so the limit itself is exercised.
 */
export const shortstr = fc.oneof(
  text(63),
  fc.string({ unit: "binary-ascii", maxLength: 255 }),
  fc.constant("x".repeat(255)),
);

/** A long string, kept small: its 32-bit length prefix is what matters, not its size. */
export const longstr = text(300);

// ---------------------------------------------------------------------------------------------
// field tables

export type Pair = readonly [input: FieldValue, expected: FieldValue];

const int = (min: number, max: number) => fc.integer({ min, max });
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** The seconds a JS Date can hold from 1970 on (ECMA-262: +-8.64e15 ms). */
const DATE_MAX_SECONDS = 8_640_000_000_000;

/** A Date on a whole second: the wire carries seconds, so only those round-trip exactly. */
const wholeSecondDate = fc.integer({ min: 0, max: DATE_MAX_SECONDS }).map((s) => new Date(s * 1000));
const buffer = fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u));
const decimal = fc.tuple(int(0, 255), int(-0x80000000, 0x7fffffff)).map(([s, v]) => new Decimal(s, v));
/** Integers outside the safe range: the decoder must give these back as bigints. */
const unsafeInt64 = fc.oneof(
  fc.bigInt({ min: INT64_MIN, max: -SAFE - 1n }),
  fc.bigInt({ min: SAFE + 1n, max: INT64_MAX }),
);

const same = <T extends FieldValue>(a: fc.Arbitrary<T>): fc.Arbitrary<Pair> => a.map((v) => [v, v] as const);
const forced = <T extends FieldValue>(
  tag: Parameters<typeof typed>[0],
  a: fc.Arbitrary<T>,
  out: (v: T) => FieldValue = (v) => v,
): fc.Arbitrary<Pair> => a.map((v) => [typed(tag, v), out(v)] as const);

/** Scalars, by default mapping and forced to every tag. */
const scalarPair: fc.Arbitrary<Pair> = fc.oneof(
  // default mapping: boolean -> t, integers -> I or l, other numbers -> d, bigint -> l, ...
  same(fc.boolean()),
  same(int(-0x80000000, 0x7fffffff)),
  same(fc.maxSafeInteger()),
  same(fc.double()), // NaN, +-Infinity, -0, huge integers: all through d exactly
  same(unsafeInt64),
  same(text(40)),
  same(buffer),
  same(wholeSecondDate),
  same(fc.constant(null)),
  same(decimal),
  // every tag forced
  forced("t", fc.boolean()),
  forced("b", int(-0x80, 0x7f)),
  forced("B", int(0, 0xff)),
  forced("s", int(-0x8000, 0x7fff)),
  forced("u", int(0, 0xffff)),
  forced("I", int(-0x80000000, 0x7fffffff)),
  forced("i", int(0, 0xffffffff)),
  forced("l", fc.maxSafeInteger()),
  forced("l", unsafeInt64),
  forced("l", fc.bigInt({ min: -SAFE, max: SAFE }), (v) => Number(v)),
  forced("f", fc.float()), // float32 values (and NaN, -0, +-Infinity) survive 4 bytes exactly
  forced("d", fc.double()),
  forced("D", decimal),
  forced("S", text(40)),
  forced("x", buffer),
  forced("T", wholeSecondDate),
  forced("T", int(0, DATE_MAX_SECONDS), (s) => new Date(s * 1000)),
  // Beyond a Date's range the timestamp comes back as the exact 64-bit value, still tagged T.
  forced("T", fc.bigInt({ min: BigInt(DATE_MAX_SECONDS) + 1n, max: 2n ** 64n - 1n }), (v) => typed("T", v)),
  forced("V", fc.constant(null)),
);

/** Table keys: any short string, with the ones that are dangerous as plain-object keys mixed in. */
const key = fc.oneof(
  { weight: 5, arbitrary: text(20) },
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "") },
);

/** An object with exactly these own enumerable keys, "__proto__" included as a plain key. */
export function tableOf(entries: readonly (readonly [string, FieldValue])[]): FieldTable {
  const t: FieldTable = {};
  for (const [k, v] of entries)
    Object.defineProperty(t, k, { value: v, enumerable: true, writable: true, configurable: true });
  return t;
}

const { value: valuePair, table: tablePair } = fc.letrec<{ value: Pair; table: Pair; array: Pair }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalarPair,
    tie("table"),
    tie("array"),
    tie("table").map(([i, e]) => [typed("F", i), e] as const),
  ),
  table: fc
    .uniqueArray(fc.tuple(key, tie("value")), { selector: ([k]) => k, maxLength: 6 })
    .map(
      (entries) =>
        [
          tableOf(entries.map(([k, [i]]) => [k, i] as const)),
          tableOf(entries.map(([k, [, e]]) => [k, e] as const)),
        ] as const,
    ),
  array: fc.array(tie("value"), { maxLength: 6 }).map((items) => {
    const pair: Pair = [items.map(([i]) => i), items.map(([, e]) => e)];
    return items.length % 2 === 0 ? pair : ([typed("A", pair[0]), pair[1]] as const);
  }),
}));

/** Any field value with what it decodes to. */
export const fieldValuePair: fc.Arbitrary<Pair> = valuePair;
/** Any field table (nested tables and arrays inside) with what it decodes to. */
export const fieldTablePair = tablePair as fc.Arbitrary<readonly [FieldTable, FieldTable]>;

// ---------------------------------------------------------------------------------------------
// methods

type Domain = "octet" | "short" | "long" | "longlong" | "shortstr" | "longstr" | "bit" | "table";

/** Each domain's full range of values (longlong: the numbers a method field can carry exactly). */
const domainPair: Record<Domain, fc.Arbitrary<Pair>> = {
  octet: same(int(0, 0xff)),
  short: same(int(0, 0xffff)),
  long: same(int(0, 0xffffffff)),
  longlong: same(fc.oneof(int(0, 0xffffffff), fc.maxSafeInteger().map(Math.abs))),
  shortstr: same(shortstr),
  longstr: same(longstr),
  bit: same(fc.boolean()),
  table: fieldTablePair,
};

export const methodNames = Object.keys(METHODS) as MethodName[];

/** Arguments for one method, from its row in METHODS: [method to encode, method expected back]. */
export function methodPair(name: MethodName): fc.Arbitrary<readonly [Method, Method]> {
  const fields = (METHODS[name][2] as readonly (readonly [string | null, Domain])[]).filter(
    (f): f is readonly [string, Domain] => f[0] !== null,
  );
  const record: Record<string, fc.Arbitrary<Pair>> = {};
  for (const [field, domain] of fields) record[field] = domainPair[domain];
  return fc.record(record).map((args) => {
    const input: Record<string, unknown> = { name };
    const expected: Record<string, unknown> = { name };
    for (const [k, [i, e]] of Object.entries(args)) {
      input[k] = i;
      expected[k] = e;
    }
    return [input as Method, expected as Method] as const;
  });
}

// ---------------------------------------------------------------------------------------------
// content properties

/** A value for each of the 14 basic properties, by name. */
const propertyValue: {
  [K in (typeof PROPERTY_NAMES)[number]]: fc.Arbitrary<readonly [BasicProperties[K], BasicProperties[K]]>;
} = {
  contentType: same(shortstr) as never,
  contentEncoding: same(shortstr) as never,
  headers: fieldTablePair,
  deliveryMode: same(int(0, 255)) as never,
  priority: same(int(0, 255)) as never,
  correlationId: same(shortstr) as never,
  replyTo: same(shortstr) as never,
  expiration: same(shortstr) as never,
  messageId: same(shortstr) as never,
  timestamp: same(wholeSecondDate) as never,
  type: same(shortstr) as never,
  userId: same(shortstr) as never,
  appId: same(shortstr) as never,
  clusterId: same(shortstr) as never,
};

/** Properties with exactly the ones whose bit is set in `mask` (bit 13 = the first, contentType). */
export function propertiesPair(mask: number): fc.Arbitrary<readonly [BasicProperties, BasicProperties]> {
  const record: Record<string, fc.Arbitrary<readonly [unknown, unknown]>> = {};
  PROPERTY_NAMES.forEach((name, i) => {
    if (mask & (1 << (13 - i))) record[name] = propertyValue[name];
  });
  return fc.record(record).map((props) => {
    const input: Record<string, unknown> = {};
    const expected: Record<string, unknown> = {};
    for (const [k, [i, e]] of Object.entries(props)) {
      input[k] = i;
      expected[k] = e;
    }
    return [input as BasicProperties, expected as BasicProperties] as const;
  });
}

/** Any subset of the properties, with any values. */
export const anyPropertiesPair = fc.integer({ min: 0, max: (1 << 14) - 1 }).chain(propertiesPair);
