/**
 * The codec benchmark: warren's src/protocol beside amqplib's codec (its lib/frame.js and
 * lib/defs.js), in one process, no broker, no sockets.
 *
 *   npx tsx bench/codec.ts            full run (~25 s)
 *   npx tsx bench/codec.ts --quick    fewer rounds (~10 s)
 *
 * Scenarios
 * - encode: basic.publish + content header + body (16 B and 4 KiB), one Buffer per message,
 *   the way each client's publish path produces it: warren writes the three frames into its
 *   slab Writer with encodePublish (what Outbound#publish calls), takes the bytes and releases
 *   the slab once they are read (as it does after a plain TCP socket's write has copied them); amqplib encodes the method and the properties and joins
 *   them with the body frame as Connection#sendMessage does (one buffer under 2 KiB, else
 *   method+header and a separate body frame, as sendContent does).
 * - decode: a stream of basic.deliver messages (method + header + body), prepared once as one
 *   large Buffer and cut into 64 KiB chunks, as a socket delivers them. warren pushes each chunk
 *   into its FrameParser and drains it; amqplib runs Connection#recvFrame's loop (parseFrame on
 *   the buffered rest, Buffer.concat with each incoming chunk, decodeFrame). Both decode every
 *   method argument and every property.
 *
 * Method: the two clients alternate round by round (warren, amqplib, warren, ...) after a
 * warm-up, so drift on a shared machine hits both alike; each round is a fixed batch timed
 * with hrtime, and the report gives the median and the min..max of the rounds' ops/s.
 *
 * Bytes allocated per message: measured in a separate, untimed pass (see bytesPerMessage):
 * every object and Buffer the codec creates per message, transient or not.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import {
  encodeBodyFrames,
  encodeHeaderFrame,
  encodeMethodFrame,
  FrameParser,
  Writer,
  type BasicProperties,
  type Method,
} from "../src/protocol/index.js";
import { encodePublish } from "../src/protocol/publish.js";

// ---------------------------------------------------------------------------------------------
// amqplib's codec, reached through its package files (CommonJS, untyped)

const require = createRequire(import.meta.url);
// amqplib's "exports" map hides lib/: find the package from its main entry, then load by path.
const AMQPLIB_DIR = dirname(require.resolve("amqplib"));
interface AmqplibFrame {
  type?: number;
  channel: number;
  size: number;
  payload: Buffer;
  rest: Buffer;
}
const amqpFrame = require(join(AMQPLIB_DIR, "lib/frame.js")) as {
  parseFrame(bin: Buffer, max: number): AmqplibFrame | false;
  decodeFrame(frame: AmqplibFrame): {
    id?: number;
    channel: number;
    fields?: Record<string, unknown>;
    content?: Buffer;
    size?: number;
  };
  makeBodyFrame(channel: number, payload: Buffer): Buffer;
};
const amqpDefs = require(join(AMQPLIB_DIR, "lib/defs.js")) as {
  BasicPublish: number;
  BasicProperties: number;
  FRAME_OVERHEAD: number;
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: Record<string, unknown>): Buffer;
};
/** amqplib's Connection#sendMessage joins small messages into one buffer below this size. */
const AMQPLIB_SINGLE_CHUNK_THRESHOLD = 2048;

// ---------------------------------------------------------------------------------------------
// workload

const FRAME_MAX = 131072;
const CHANNEL = 1;
const CHUNK = 64 * 1024;

/** Properties an application typically sets: a content type, persistence, an id, one header. */
const properties = {
  contentType: "application/json",
  deliveryMode: 2,
  messageId: "msg-000000000001",
  headers: { "x-trace": "4bf92f3577b34da6" },
} satisfies BasicProperties;
const publish = { exchange: "bench.exchange", routingKey: "bench.routing.key" };
const amqplibPublishFields = {
  ticket: 0,
  exchange: "bench.exchange",
  routingKey: "bench.routing.key",
  mandatory: false,
  immediate: false,
};

let sink = 0; // everything a batch produces feeds this, so no work can be optimised away

function warrenEncoder(body: Buffer): (n: number) => void {
  const w = new Writer();
  return (n) => {
    for (let i = 0; i < n; i++) {
      encodePublish(w, CHANNEL, publish.exchange, publish.routingKey, false, properties, body, FRAME_MAX);
      sink += w.take().length;
      // The bytes are consumed here, as a TCP socket copies them: the client then releases the
      // writer (outbound.ts, writeOut), so its slab is written again instead of a new one.
      w.release();
    }
  };
}

/** What amqplib's sendMessage + sendContent build for one publish, without the socket. */
function amqplibPublishBuffers(body: Buffer): Buffer[] {
  const mframe = amqpDefs.encodeMethod(amqpDefs.BasicPublish, CHANNEL, amqplibPublishFields);
  const pframe = amqpDefs.encodeProperties(amqpDefs.BasicProperties, CHANNEL, body.length, properties);
  const methodHeaderLen = mframe.length + pframe.length;
  const bodyLen = body.length > 0 ? body.length + amqpDefs.FRAME_OVERHEAD : 0;
  if (methodHeaderLen + bodyLen < AMQPLIB_SINGLE_CHUNK_THRESHOLD) {
    const all = Buffer.allocUnsafe(methodHeaderLen + bodyLen);
    let offset = mframe.copy(all, 0);
    offset += pframe.copy(all, offset);
    if (bodyLen > 0) amqpFrame.makeBodyFrame(CHANNEL, body).copy(all, offset);
    return [all];
  }
  const both = Buffer.allocUnsafe(methodHeaderLen);
  pframe.copy(both, mframe.copy(both, 0));
  const out: Buffer[] = [both];
  const maxBody = FRAME_MAX - amqpDefs.FRAME_OVERHEAD;
  for (let offset = 0; offset < body.length; offset += maxBody)
    out.push(amqpFrame.makeBodyFrame(CHANNEL, body.subarray(offset, offset + maxBody)));
  return out;
}

function amqplibEncoder(body: Buffer): (n: number) => void {
  return (n) => {
    for (let i = 0; i < n; i++) {
      const bufs = amqplibPublishBuffers(body);
      for (let j = 0; j < bufs.length; j++) sink += bufs[j]!.length;
    }
  };
}

/** n basic.deliver messages, as the broker would send them, cut into socket-sized chunks. */
function deliverStream(body: Buffer, n: number): Buffer[] {
  const w = new Writer(1 << 20);
  for (let i = 0; i < n; i++) {
    const deliver: Method = {
      name: "basic.deliver",
      consumerTag: "amq.ctag-Ks0LbEKdF8nV2hXGvD0_2g",
      deliveryTag: i + 1,
      redelivered: false,
      exchange: "bench.exchange",
      routingKey: "bench.routing.key",
    };
    encodeMethodFrame(w, CHANNEL, deliver, FRAME_MAX);
    // Every message its own id, as a real stream has: only what repeats can be shared.
    encodeHeaderFrame(
      w,
      CHANNEL,
      60,
      body.length,
      { ...properties, messageId: `msg-${String(i).padStart(12, "0")}` },
      FRAME_MAX,
    );
    encodeBodyFrames(w, CHANNEL, body, FRAME_MAX);
  }
  const all = Buffer.from(w.take());
  const chunks: Buffer[] = [];
  // Each chunk its own allocation, as socket reads are.
  for (let off = 0; off < all.length; off += CHUNK) chunks.push(Buffer.from(all.subarray(off, off + CHUNK)));
  return chunks;
}

function warrenDecoder(chunks: Buffer[], frames: number): () => void {
  return () => {
    const p = new FrameParser(FRAME_MAX);
    let n = 0;
    for (let i = 0; i < chunks.length; i++) {
      p.push(chunks[i]!);
      for (let f = p.next(); f !== undefined; f = p.next()) n++;
    }
    if (n !== frames) throw new Error(`warren decoded ${n} frames, expected ${frames}`);
    sink += n;
  };
}

/** amqplib's Connection#recvFrame loop, fed one chunk per 'readable' event. */
function amqplibDecoder(chunks: Buffer[], frames: number): () => void {
  return () => {
    let rest: Buffer = Buffer.alloc(0);
    let incoming: Buffer | null = null;
    const recvFrame = (): unknown => {
      const frame = amqpFrame.parseFrame(rest, FRAME_MAX);
      if (!frame) {
        if (incoming === null) return false;
        rest = Buffer.concat([rest, incoming]);
        incoming = null;
        return recvFrame();
      }
      rest = frame.rest;
      return amqpFrame.decodeFrame(frame);
    };
    let n = 0;
    for (let i = 0; i < chunks.length; i++) {
      incoming = chunks[i]!;
      while (recvFrame()) n++;
    }
    if (n !== frames) throw new Error(`amqplib decoded ${n} frames, expected ${frames}`);
    sink += n;
  };
}

// ---------------------------------------------------------------------------------------------
// the harness

type Client = "warren" | "amqplib";

interface Scenario {
  name: string;
  /** Messages per timed batch. */
  messages: number;
  /** A function that processes n messages (its inputs prepared up front, outside any timing). */
  make: Record<Client, (n: number) => () => void>;
}

function scenarios(): Scenario[] {
  const small = Buffer.alloc(16, 0x61);
  const large = Buffer.alloc(4096, 0x62);
  const out: Scenario[] = [];
  for (const [label, body, messages] of [
    ["16 B", small, 50_000],
    ["4 KiB", large, 20_000],
  ] as const) {
    out.push({
      name: `encode publish ${label}`,
      messages,
      make: {
        warren: (n) => {
          const run = warrenEncoder(body);
          return () => run(n);
        },
        amqplib: (n) => {
          const run = amqplibEncoder(body);
          return () => run(n);
        },
      },
    });
  }
  for (const [label, body, messages] of [
    ["16 B", small, 50_000],
    ["4 KiB", large, 10_000],
  ] as const) {
    const streams = new Map<number, Buffer[]>();
    const stream = (n: number) => streams.get(n) ?? (streams.set(n, deliverStream(body, n)), streams.get(n)!);
    out.push({
      name: `decode deliver ${label}`,
      messages,
      make: { warren: (n) => warrenDecoder(stream(n), 3 * n), amqplib: (n) => amqplibDecoder(stream(n), 3 * n) },
    });
  }
  return out;
}

/** Both clients must produce the same bytes for a publish: the benchmark compares equal work. */
function checkSameBytes(): void {
  for (const size of [16, 4096]) {
    const body = Buffer.alloc(size, 0x63);
    const w = new Writer();
    encodePublish(w, CHANNEL, publish.exchange, publish.routingKey, false, properties, body, FRAME_MAX);
    const ours = Buffer.from(w.take());
    const theirs = Buffer.concat(amqplibPublishBuffers(body));
    if (!ours.equals(theirs)) throw new Error(`warren and amqplib encode a ${size}-byte publish differently`);
  }
}

/**
 * CPU seconds (user + system, all of the process's threads, so GC helpers count) one batch
 * took. On a shared machine this is steadier than wall time: time spent descheduled while
 * other processes run is nobody's codec's fault. The rate reported is messages per CPU-second.
 */
function timeBatch(run: () => void): number {
  const c0 = process.cpuUsage();
  run();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/** gc(), without requiring the process to be started with --expose-gc. */
const gc: () => void = (() => {
  v8.setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();

/** Used bytes of the heap spaces that hold objects; code spaces are left out, as the JIT filling them is not the codec allocating. */
function dataHeapUsed(): number {
  let used = 0;
  for (const space of v8.getHeapSpaceStatistics())
    if (!space.space_name.startsWith("code")) used += space.space_used_size;
  return used;
}

/**
 * Collect garbage and wait until Buffer memory stops moving: backing stores are released by a
 * concurrent sweeper after the GC returns, and a release inside the window would be counted
 * as negative allocation.
 */
async function settle(): Promise<void> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const now = process.memoryUsage().arrayBuffers;
    if (now === last) return;
    last = now;
  }
}

/** Bytes allocated by one call of run: V8 heap plus Buffer backing stores, or undefined if a GC struck. */
async function allocationWindow(run: () => void): Promise<number | undefined> {
  await settle();
  const profiler = new v8.GCProfiler();
  profiler.start();
  const heap0 = dataHeapUsed();
  const ab0 = process.memoryUsage().arrayBuffers;
  run();
  const heap1 = dataHeapUsed();
  const ab1 = process.memoryUsage().arrayBuffers;
  const gcs = profiler.stop()?.statistics.length ?? 0;
  return gcs === 0 ? heap1 - heap0 + (ab1 - ab0) : undefined;
}

/**
 * Bytes allocated per message. Node 20 has no cumulative allocation counter
 * (v8.getHeapStatistics().total_allocated_bytes came later), and counting what GCs free is
 * unreliable for Buffers (their backing stores are released by a concurrent sweeper, after the
 * GC's own statistics are taken). So: collect garbage, let the sweeper finish, run n messages,
 * and read how much the V8 heap and the ArrayBuffer total grew -- exact, provided no GC ran in
 * between, which GCProfiler tells us. If one did, halve n and try again. The smallest of a few
 * windows is taken (noise only ever adds), less the same measurement around an empty run.
 */
async function bytesPerMessage(make: (n: number) => () => void, tries: number): Promise<number> {
  const baseline = (await allocationWindow(() => {})) ?? 0;
  for (let n = 8000; n >= 100; n >>= 1) {
    const run = make(n);
    run(); // warm: first-call allocations (feedback vectors, lazy compilation) are not per message
    const windows: number[] = [];
    for (let i = 0; i < tries; i++) {
      const bytes = await allocationWindow(run);
      if (bytes !== undefined) windows.push(bytes);
    }
    if (windows.length === tries) return Math.max(0, (Math.min(...windows) - baseline) / n);
  }
  return NaN;
}

export interface CodecResult {
  scenario: string;
  client: string;
  opsPerSec: { median: number; min: number; max: number };
  bytesPerMsg: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function codecBench(opts: {
  quick: boolean;
  only?: string | undefined;
  clients?: readonly Client[] | undefined;
}): Promise<CodecResult[]> {
  checkSameBytes();
  const warmup = opts.quick ? 3 : 5;
  const rounds = opts.quick ? 7 : 31;
  const names = opts.clients ?? (["warren", "amqplib"] as const);
  const results: CodecResult[] = [];
  for (const s of scenarios()) {
    if (opts.only !== undefined && !s.name.includes(opts.only)) continue;
    const runs = Object.fromEntries(names.map((n) => [n, s.make[n](s.messages)])) as Record<Client, () => void>;
    const rates: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < warmup + rounds; r++) {
      // Alternate which client goes first, too, so neither always runs right after a GC the other caused.
      const order = r % 2 === 0 ? names : [...names].reverse();
      for (const name of order) {
        const secs = timeBatch(runs[name]);
        if (r >= warmup) rates[name]!.push(s.messages / secs);
      }
      // Let the event loop breathe between rounds (timers, the parent's signals).
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const name of names) {
      const xs = rates[name]!;
      results.push({
        scenario: s.name,
        client: name,
        opsPerSec: { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) },
        bytesPerMsg: await bytesPerMessage(s.make[name], opts.quick ? 3 : 5),
      });
    }
  }
  if (sink === 0) throw new Error("benchmark produced nothing");
  return results;
}

// ---------------------------------------------------------------------------------------------
// command line

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export function formatCodecTable(results: CodecResult[]): string {
  const rows: string[][] = [["scenario", "client", "median msg/s", "min .. max", "bytes/msg", "warren / amqplib"]];
  for (const r of results) {
    const base = results.find((x) => x.scenario === r.scenario && x.client === "amqplib");
    const ratio = r.client === "warren" && base ? `${(r.opsPerSec.median / base.opsPerSec.median).toFixed(2)}x` : "";
    rows.push([
      r.scenario,
      r.client,
      fmt(r.opsPerSec.median),
      `${fmt(r.opsPerSec.min)} .. ${fmt(r.opsPerSec.max)}`,
      fmt(r.bytesPerMsg),
      ratio,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) =>
    `| ${row.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ")} |`;
  return [
    line(rows[0]!),
    `|${widths.map((w, i) => (i >= 2 ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`,
    ...rows.slice(1).map(line),
  ].join("\n");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // --only <text>: scenarios whose name contains it; --client warren|amqplib: one client (for --cpu-prof).
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const quick = process.argv.includes("--quick");
  const client = arg("--client") as Client | undefined;
  const t0 = Date.now();
  const results = await codecBench({ quick, only: arg("--only"), ...(client ? { clients: [client] } : {}) });
  console.log(
    `warren vs amqplib ${(JSON.parse(readFileSync(join(AMQPLIB_DIR, "package.json"), "utf8")) as { version: string }).version} codec, Node ${process.version}, ${quick ? "--quick" : "full"} run in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  console.log(formatCodecTable(results));
}
