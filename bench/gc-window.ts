/**
 * The collector's share of confirmed publishing by how many publishes wait at once: 300k
 * confirmed 16 B publishes at windows of 100, 1k, 10k and 100k, each publish with its own
 * promise (`publish`, as most code writes it), with the `onConfirm` callback instead, or in
 * batches of half the window, two in flight (`publishBatch`). GC time is the sum of the 'gc' performance entries over the run; CPU is the
 * process's user + system. Against the stand-in broker, so the figures are the client's:
 *
 *   npm run build
 *   node --import tsx bench/null-broker.ts 5690 &
 *   node --import tsx bench/gc-window.ts amqp://guest:guest@127.0.0.1:5690
 */
import { PerformanceObserver, performance } from "node:perf_hooks";
import type { Channel, Publication } from "../src/index.js";
import { windowed } from "./clients/types.js";
import { loadWarren } from "./warren-dist.js";

const { connect } = await loadWarren();
const url = process.argv[2] ?? "amqp://guest:guest@127.0.0.1:5690";
const N = 300_000;
const WINDOWS = [100, 1_000, 10_000, 100_000];
const body = Buffer.alloc(16, "x");

let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ["gc"] });

const forms: Record<string, (ch: Channel, window: number) => Promise<void>> = {
  publish: (ch, window) =>
    windowed(N, window, (_i, done) => {
      ch.publish("", "gc-window", body).then(() => done(), done);
    }),
  // The caller's one function and options for every publish, as a pipeline that counts confirms
  // writes it; the returned promise never rejects with onConfirm, so it may be left.
  onConfirm: (ch, window) =>
    new Promise<void>((resolve, reject) => {
      let started = 0;
      let confirmed = 0;
      const onConfirm = (err: Error | undefined) => {
        if (err !== undefined) return reject(err);
        if (++confirmed === N) resolve();
        else pump();
      };
      const options = { onConfirm };
      const pump = () => {
        while (started < N && started - confirmed < window) {
          started++;
          void ch.publish("", "gc-window", body, options);
        }
      };
      pump();
    }),
  publishBatch: (ch, window) => {
    const size = Math.max(1, window >> 1);
    const batch: Publication[] = new Array<Publication>(size).fill({ exchange: "", routingKey: "gc-window", body });
    return windowed(Math.ceil(N / size), 2, (_b, done) => {
      ch.publishBatch(batch).then(() => done(), done);
    });
  },
};

const conn = await connect(url);
for (const [form, run] of Object.entries(forms)) {
  const once = async (window: number) => {
    const ch = await conn.openChannel();
    await ch.confirmSelect();
    await run(ch, window);
    await ch.close();
  };
  for (const window of WINDOWS) await once(window); // warm-up, not reported
  for (const window of WINDOWS) {
    gcMs = 0;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await once(window);
    const ms = performance.now() - t0;
    const { user, system } = process.cpuUsage(cpu);
    console.log(
      `${form.padEnd(12)} window ${String(window).padStart(6)}: ${((user + system) / N).toFixed(2)} µs/msg CPU, ` +
        `GC ${((100 * gcMs) / ms).toFixed(0)}% of ${ms.toFixed(0)} ms (${((gcMs * 1000) / N).toFixed(2)} µs/msg)`,
    );
  }
}
await conn.close();
