/** Wall time, this process's CPU time and the broker's CPU time over one run. */
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
}

export async function measure(n: number, brokerPid: number | undefined, run: () => Promise<void>): Promise<Measurement> {
  const b0 = processCpuMicros(brokerPid);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const b1 = processCpuMicros(brokerPid);
  return { n, seconds, opsPerSec: n / seconds, cpuUserUs: c.user / n, cpuSysUs: c.system / n, brokerCpuUs: (b1 - b0) / n };
}
