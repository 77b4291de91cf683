/**
 * The scenarios. Each runs inside a child process for one client and returns one Measurement.
 * Sizes come from the parent (quick or full mode).
 */
import { performance } from "node:perf_hooks";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClientFactory, Handling } from "../clients/types.js";
import { publishFrames } from "../clients/raw.js";
import { Control } from "../control.js";
import { measure, type Measurement } from "../measure.js";
import { percentileSorted } from "../stats.js";

export interface Sizes {
  publish16: number;
  publish4k: number;
  confirms: number;
  confirmWindow: number;
  consume: number;
  prefetch: number;
  latencySeconds: number;
  latencyRate: number;
  memoryPublish: number;
  naive: number;
}

export interface Ctx {
  url: string;
  brokerPid: number | undefined;
  factory: ClientFactory;
  control: Control;
  sizes: Sizes;
}

export interface Scenario {
  title: string;
  unit: string;
  /** Needs a process of its own (memory peaks). */
  isolated: boolean;
  run(ctx: Ctx): Promise<Measurement>;
}

const body16 = Buffer.alloc(16, "x");
const body4k = Buffer.alloc(4096, "x");

/** Messages run before the measured span of a throughput scenario. */
function warmup(n: number): number {
  return Math.min(5000, Math.ceil(n / 10));
}

async function publishRun(ctx: Ctx, body: Buffer, n: number, tag: string): Promise<Measurement> {
  const client = await ctx.factory({ url: ctx.url });
  const q = await ctx.control.queue(tag);
  try {
    // Warm-up, not measured: the JIT's first compile belongs to no steady-state figure.
    const w = warmup(n);
    await client.publish(q, body, w);
    await ctx.control.waitForCount(q, w);
    await ctx.control.ch.queuePurge(q);
    return await measure(n, ctx.brokerPid, async () => {
      await client.publish(q, body, n);
      await ctx.control.waitForCount(q, n);
    });
  } finally {
    await client.close();
    await ctx.control.delete(q);
  }
}

async function confirmsRun(ctx: Ctx, form: "publishConfirmed" | "publishConfirmedEach"): Promise<Measurement> {
  const client = await ctx.factory({ url: ctx.url });
  const q = await ctx.control.queue("confirm");
  const { confirms: n, confirmWindow: window } = ctx.sizes;
  try {
    await client[form](q, body16, warmup(n), window); // warm-up, not measured
    return await measure(n, ctx.brokerPid, () => client[form](q, body16, n, window));
  } finally {
    await client.close();
    await ctx.control.delete(q);
  }
}

async function consumeRun(ctx: Ctx, handling: Handling): Promise<Measurement> {
  const n = ctx.sizes.consume;
  const q = await ctx.control.queue(`consume-${handling.kind}`);
  // Warm-up on a queue of its own, holding exactly what the warm-up consumes (a noAck consumer
  // takes all it is sent before its cancel lands).
  const wq = await ctx.control.queue("warmup");
  try {
    const w = warmup(n);
    await ctx.control.fill(wq, body16, w);
    await ctx.control.fill(q, body16, n);
    const client = await ctx.factory({ url: ctx.url });
    try {
      await client.consume(wq, w, { handling, prefetch: ctx.sizes.prefetch }); // not measured
      return await measure(n, ctx.brokerPid, () => client.consume(q, n, { handling, prefetch: ctx.sizes.prefetch }));
    } finally {
      await client.close();
    }
  } finally {
    await ctx.control.delete(q);
    await ctx.control.delete(wq);
  }
}

/**
 * Fanout end-to-end latency at a paced rate: one connection publishes to a fanout exchange,
 * another consumes from the queue bound to it (same process, so both read the same clock).
 * The body carries performance.now() at the publish call. The first 10% are warm-up.
 */
async function latencyRun(ctx: Ctx, noDelay: boolean | undefined): Promise<Measurement> {
  const { latencyRate: rate, latencySeconds } = ctx.sizes;
  const total = Math.round(rate * latencySeconds);
  const exchange = `bench-fanout-${randomUUID().slice(0, 8)}`;
  await ctx.control.ch.exchangeDeclare(exchange, "fanout", { autoDelete: false });
  const q = await ctx.control.queue("latency");
  await ctx.control.ch.queueBind(q, exchange, "");
  // Let the broker settle after the previous scenario (queue deletions, closing connections).
  await sleep(300);
  const sub = await ctx.factory({ url: ctx.url, noDelay });
  const pub = await ctx.factory({ url: ctx.url, noDelay });
  const samples = new Float64Array(total);
  let received = 0;
  let allIn!: () => void;
  const done = new Promise<void>((r) => (allIn = r));
  try {
    await sub.subscribe(q, (b) => {
      const sent = new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
      if (received < total) samples[received++] = performance.now() - sent;
      if (received === total) allIn();
    });
    const m = await measure(total, ctx.brokerPid, async () => {
      let sent = 0;
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const tick = () => {
          const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
          while (sent < due) {
            const b = Buffer.allocUnsafe(16);
            b.writeDoubleLE(performance.now(), 0);
            b.fill(0, 8);
            pub.send(exchange, "", b);
            sent++;
          }
          if (sent < total) setTimeout(tick, 1);
          else resolve();
        };
        tick();
      });
      await Promise.race([done, sleep(10_000)]);
    });
    const warm = Math.floor(received / 10);
    const s = samples.subarray(warm, received).sort();
    return {
      ...m,
      p50: percentileSorted(s, 50),
      p99: percentileSorted(s, 99),
      p999: percentileSorted(s, 99.9),
      n: received,
    };
  } finally {
    await pub.close();
    await sub.close();
    await ctx.control.delete(q);
    await ctx.control.ch.exchangeDelete(exchange).catch(() => undefined);
  }
}

/** Peak memory: RSS from the kernel's high-water mark, heap and external sampled every 1024 publishes and while waiting. */
function memoryProbe() {
  let peakHeap = 0;
  let peakExternal = 0;
  const probe = () => {
    const m = process.memoryUsage();
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
    if (m.external > peakExternal) peakExternal = m.external;
  };
  return { probe, peaks: () => ({ peakHeap, peakExternal, peakRss: process.resourceUsage().maxRSS * 1024 }) };
}

async function memoryRun(ctx: Ctx, naive: boolean): Promise<Measurement> {
  const n = naive ? ctx.sizes.naive : ctx.sizes.memoryPublish;
  const q = await ctx.control.queue(naive ? "naive" : "memory");
  const client = await ctx.factory({ url: ctx.url });
  const baseRss = process.memoryUsage.rss();
  const mem = memoryProbe();
  try {
    const m = await measure(n, ctx.brokerPid, async () => {
      if (naive) await client.naive(q, body16, n, mem.probe);
      else await client.publish(q, body16, n, mem.probe);
      await ctx.control.waitForCount(q, n, 300_000, mem.probe);
    });
    return { ...m, ...mem.peaks(), baseRss, bytesQueued: n * publishFrames(q, body16, 131072).length };
  } finally {
    await client.close();
    await ctx.control.delete(q);
  }
}

export const SCENARIOS: Record<string, Scenario> = {
  "publish-16B": {
    title: "publish 16 B, until the broker holds all",
    unit: "msg/s",
    isolated: false,
    run: (c) => publishRun(c, body16, c.sizes.publish16, "pub16"),
  },
  "publish-4KiB": {
    title: "publish 4 KiB, until the broker holds all",
    unit: "msg/s",
    isolated: false,
    run: (c) => publishRun(c, body4k, c.sizes.publish4k, "pub4k"),
  },
  "confirms-16B": {
    title: "publish with confirms, pipelined",
    unit: "msg/s",
    isolated: false,
    run: (c) => confirmsRun(c, "publishConfirmed"),
  },
  "confirms-each-16B": {
    title: "publish with confirms, a promise each, 1000 waiting",
    unit: "msg/s",
    isolated: false,
    run: (c) => confirmsRun(c, "publishConfirmedEach"),
  },
  "consume-ack": {
    title: "consume, manual ack",
    unit: "msg/s",
    isolated: false,
    run: (c) => consumeRun(c, { kind: "ack" }),
  },
  "consume-noack": {
    title: "consume, noAck",
    unit: "msg/s",
    isolated: false,
    run: (c) => consumeRun(c, { kind: "noack" }),
  },
  "consume-async-1": {
    title: "consume, async handler acked on return (warren: concurrency 1)",
    unit: "msg/s",
    isolated: false,
    run: (c) => consumeRun(c, { kind: "async", concurrency: 1 }),
  },
  "consume-async-10": {
    title: "consume, async handler acked on return (warren: concurrency 10)",
    unit: "msg/s",
    isolated: false,
    run: (c) => consumeRun(c, { kind: "async", concurrency: 10 }),
  },
  "latency-default": {
    title: "fanout latency, default socket options",
    unit: "ms",
    isolated: false,
    run: (c) => latencyRun(c, undefined),
  },
  "latency-nodelay": {
    title: "fanout latency, TCP_NODELAY on",
    unit: "ms",
    isolated: false,
    run: (c) => latencyRun(c, true),
  },
  "memory-publish": {
    title: "peak memory, publishing with flow control",
    unit: "MB",
    isolated: true,
    run: (c) => memoryRun(c, false),
  },
  "memory-naive": {
    title: "peak memory, naive publisher (awaits nothing)",
    unit: "MB",
    isolated: true,
    run: (c) => memoryRun(c, true),
  },
};
