/**
 * How much memory a noAck callback consumer takes when its handler is slower than the broker:
 * a queue of `--messages` (default 1,000,000) messages of `--size` bytes, consumed with noAck by an
 * async handler that waits `--handler-ms` (default 2) per message, one at a time, for `--seconds`
 * (default 30). Prints the process's RSS and heap at the start and their peak, and how many
 * deliveries were read but not yet handled at most. `--hwm N` sets the consumer's highWaterMark
 * (default: the library's); a huge one shows what an unbounded buffer would do.
 *
 *   npx tsx bench/noack-memory.ts [--url amqp://...] [--messages N] [--seconds S] [--hwm N]
 */
import diagnostics from "node:diagnostics_channel";
import { parseArgs } from "node:util";
import { connect, type FrameMessage } from "../src/index.js";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: process.env["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672" },
    messages: { type: "string", default: "1000000" },
    size: { type: "string", default: "256" },
    "handler-ms": { type: "string", default: "2" },
    seconds: { type: "string", default: "30" },
    hwm: { type: "string" },
  },
});
const n = Number(values.messages);
const body = Buffer.alloc(Number(values.size), 0x61);
const handlerMs = Number(values["handler-ms"]);

const conn = await connect(values.url);
const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });
await ch.confirmSelect({ maxUnconfirmed: 5000 });
const started = Date.now();
for (let i = 0; i < n; i += 10_000)
  await ch.publishBatch(
    Array.from({ length: Math.min(10_000, n - i) }, () => ({ exchange: "", routingKey: queue, body })),
  );
console.log(`published ${n} messages of ${body.length} B in ${((Date.now() - started) / 1000).toFixed(1)} s`);

global.gc?.();
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
const base = process.memoryUsage();
let peakRss = base.rss;
let peakHeap = base.heapUsed;
let read = 0;
let handled = 0;
let mostWaiting = 0;
diagnostics.subscribe("warren:frame:in", (m) => {
  const f = (m as FrameMessage).frame;
  if (f.type === 1 && f.method.name === "basic.deliver") read++;
});
const consuming = await conn.openChannel();
await consuming.consume(
  queue,
  async () => {
    await new Promise((r) => setTimeout(r, handlerMs));
    handled++;
    mostWaiting = Math.max(mostWaiting, read - handled);
  },
  { noAck: true, ...(values.hwm !== undefined ? { highWaterMark: Number(values.hwm) } : {}) },
);
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
}, 200);
await new Promise((r) => setTimeout(r, Number(values.seconds) * 1000));
clearInterval(sampler);
console.log(
  `${values.seconds} s, handler ${handlerMs} ms, highWaterMark ${values.hwm ?? "default"}: handled ${handled}, read ${read}, ` +
    `at most ${mostWaiting} read and not handled; RSS ${mb(base.rss)} -> peak ${mb(peakRss)} MB (+${mb(peakRss - base.rss)}), ` +
    `heap ${mb(base.heapUsed)} -> peak ${mb(peakHeap)} MB (+${mb(peakHeap - base.heapUsed)})`,
);
await conn.close({ drain: false });
