/**
 * The broker's CPU time, read from its process: on a 2-core machine RabbitMQ is often the
 * bottleneck, and its CPU per message is what separates clients when throughput cannot.
 * utime + stime of beam.smp from /proc/<pid>/stat (fields 14 and 15, in clock ticks).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * The pid of the local broker's Erlang VM, or undefined when it cannot be found: the process
 * listening on `port` (several brokers may run here, each on its own port), else the one
 * rabbitmqctl reaches, else the oldest beam.smp.
 */
export function findBrokerPid(port: number): number | undefined {
  try {
    const out = execFileSync("ss", ["-Htlnp", `sport = :${port}`], { encoding: "utf8" });
    const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
    if (pid > 0) return pid;
  } catch {
    // fall through to rabbitmqctl
  }
  try {
    const out = execFileSync("rabbitmqctl", ["eval", "os:getpid()."], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 20000,
    });
    const pid = Number(out.trim().replace(/"/g, ""));
    if (pid > 0) return pid;
  } catch {
    // fall through to pgrep
  }
  try {
    const out = execFileSync("pgrep", ["-o", "beam.smp"], { encoding: "utf8" });
    const pid = Number(out.trim().split("\n")[0]);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) the process has used so far, in microseconds; NaN if unreadable. */
export function processCpuMicros(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1e6) / CLK_TCK;
  } catch {
    return NaN;
  }
}
