/** Wall time, this process's CPU time and the broker's CPU time over one run. */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { processCpuMicros } from "./broker-cpu.js";

export interface Measurement {
  /** Messages in the run. */
  n: number;
  seconds: number;
  opsPerSec: number;
  /** Client CPU (user, system) in microseconds per message. */
  cpuUserUs: number;
  cpuSysUs: number;
  /** Broker (beam.smp) CPU in microseconds per message; NaN when unreadable. */
  brokerCpuUs: number;
  /** Latency scenarios, in milliseconds. */
  p50?: number;
  p99?: number;
  p999?: number;
  /** Memory scenarios, in bytes. */
  peakRss?: number;
  peakHeap?: number;
  peakExternal?: number;
  baseRss?: number;
  /** Memory scenarios: the bytes of all the frames published (what a client has to hold at worst). */
  bytesQueued?: number;
}

/**
 * BENCH_CPU_PROF=<file.cpuprofile>: profile just the measured span (100 µs sampling), for
 * `npx tsx bench/cpuprofile-top.ts <file>`. Off in normal runs.
 */
export async function measure(
  n: number,
  brokerPid: number | undefined,
  run: () => Promise<void>,
): Promise<Measurement> {
  // Read per call: bench/child.ts names one profile per scenario with --cpu-prof.
  const PROFILE = process.env.BENCH_CPU_PROF;
  let session: Session | undefined;
  if (PROFILE) {
    session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
    await session.post("Profiler.start");
  }
  const b0 = processCpuMicros(brokerPid);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const b1 = processCpuMicros(brokerPid);
  if (session) {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(PROFILE!, JSON.stringify(profile));
    session.disconnect();
  }
  return {
    n,
    seconds,
    opsPerSec: n / seconds,
    cpuUserUs: c.user / n,
    cpuSysUs: c.system / n,
    brokerCpuUs: (b1 - b0) / n,
  };
}
