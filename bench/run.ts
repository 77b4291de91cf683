/**
 * `npm run bench [-- --quick] [--rounds N] [--only a,b] [--clients a,b] [--no-codec] [--no-footprint] [--null-broker] [--cpu-prof] [--label L]`
 *
 * Every client against the same local RabbitMQ in one run (with --null-broker: against the
 * stand-in broker of bench/null-broker.ts, which isolates the client), in interleaved rounds
 * (warren, amqplib, cloudamqp, rabbitmq-client, raw, then again...), each client in a fresh
 * child process per round; the memory scenarios get a process per client per round of their
 * own. Then the codec benchmark (bench/codec.ts) and the footprint. Writes
 * bench/results/latest.json and bench/results/latest.md; `--label L` writes latest-L.* instead
 * (another broker: `AMQP_URL=amqp://guest:guest@127.0.0.1:5673 npm run bench -- --label 4.3`).
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findBrokerPid } from "./broker-cpu.js";
import type { ChildJob } from "./child.js";
import { Control } from "./control.js";
import { footprint } from "./footprint.js";
import { machine } from "./machine.js";
import {
  clientOnlyGoals,
  goals,
  markdown,
  summarize,
  type CodecRow,
  type Report,
  type RoundResult,
  type ScenarioInfo,
} from "./report.js";
import { SCENARIOS, type Sizes } from "./scenarios/index.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag("--quick");
const nullBroker = flag("--null-broker");
/** --cpu-prof: a V8 CPU profile of every measured span, into bench/results/profiles/. */
const profileDir = flag("--cpu-prof") ? join(ROOT, "bench/results/profiles") : undefined;
if (profileDir) mkdirSync(profileDir, { recursive: true });
let url = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const ALL_CLIENTS = ["warren", "warren-amqplib", "amqplib", "cloudamqp", "rabbitmq-client", "raw"];
const clients = opt("--clients")?.split(",") ?? ALL_CLIENTS;
const only = opt("--only")?.split(",");
// Six full rounds: on a shared 2-core machine a figure moves by 20% from one round to the next.
const rounds = Number(opt("--rounds") ?? (quick ? 2 : 6));
const memoryRounds = Number(opt("--memory-rounds") ?? (quick ? 1 : 2));

const sizes: Sizes = quick
  ? {
      publish16: 60_000,
      publish4k: 15_000,
      confirms: 20_000,
      confirmWindow: 1000,
      consume: 20_000,
      prefetch: 1000,
      latencySeconds: 1,
      latencyRate: 2000,
      memoryPublish: 200_000,
      naive: 50_000,
    }
  : {
      publish16: 200_000,
      publish4k: 40_000,
      confirms: 100_000,
      confirmWindow: 1000,
      consume: 100_000,
      prefetch: 1000,
      latencySeconds: 5,
      latencyRate: 2000,
      memoryPublish: 1_000_000,
      naive: 200_000,
    };

const kinds: Record<string, ScenarioInfo> = {};
for (const [name, s] of Object.entries(SCENARIOS)) {
  if (only && !only.includes(name)) continue;
  kinds[name] = { title: s.title, kind: s.unit === "msg/s" ? "throughput" : s.unit === "ms" ? "latency" : "memory" };
}
const suite = Object.keys(kinds).filter((n) => !SCENARIOS[n]!.isolated);
const isolated = Object.keys(kinds).filter((n) => SCENARIOS[n]!.isolated);

const started = Date.now();
function log(s: string): void {
  process.stderr.write(`[${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s] ${s}\n`);
}

function brokerUp(): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = netConnect({ host: u.hostname, port: Number(u.port || 5672) });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function waitForBroker(): Promise<void> {
  for (let i = 0; i < 120 && !(await brokerUp()); i++) await new Promise((r) => setTimeout(r, 1000));
}

/** The version the broker announces (connection.start), which names it when several run here. */
async function brokerVersion(): Promise<string | undefined> {
  const control = await Control.open(url);
  const v = control.conn.serverProperties.version;
  await control.close();
  return typeof v === "string" ? v : undefined;
}

/** Run one child; a child that dies or overruns yields an error row per scenario it owed. */
function runChild(job: ChildJob, round: number, timeoutMs: number): Promise<RoundResult[]> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--max-old-space-size=8192", "--import", "tsx", join(ROOT, "bench/child.ts"), JSON.stringify(job)],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      const rows: RoundResult[] = [];
      for (const line of out.split("\n")) {
        if (!line.startsWith("@@RESULT ")) continue;
        const r = JSON.parse(line.slice(9)) as Omit<RoundResult, "round">;
        rows.push({ ...r, round });
      }
      for (const s of job.scenarios) {
        if (!rows.some((r) => r.scenario === s))
          rows.push({
            scenario: s,
            client: job.client,
            round,
            error:
              code === null
                ? `child killed after ${timeoutMs / 1000} s`
                : `child exited ${code}: ${(err.split("\n").find((l) => /Error/.test(l)) ?? err.trim().split("\n").pop() ?? "").trim()}`.slice(
                    0,
                    300,
                  ),
          });
      }
      resolve(rows);
    });
  });
}

async function runJob(job: ChildJob, round: number, timeoutMs: number): Promise<RoundResult[]> {
  let rows = await runChild(job, round, timeoutMs);
  // Other users of the broker may restart it (stop_app/start_app): wait for it and retry once.
  if (rows.some((r) => r.error)) {
    await waitForBroker();
    const failed = rows.filter((r) => r.error).map((r) => r.scenario);
    log(`  retrying ${job.client} ${failed.join(",")}: ${rows.find((r) => r.error)?.error}`);
    const again = await runChild({ ...job, scenarios: failed }, round, timeoutMs);
    rows = [...rows.filter((r) => !r.error), ...again];
  }
  return rows;
}

function brief(r: RoundResult): string {
  if (r.error || !r.m) return `${r.scenario}: ERROR ${r.error}`;
  const m = r.m;
  const fig =
    m.p99 !== undefined
      ? `p99 ${m.p99.toFixed(2)} ms`
      : m.peakRss !== undefined
        ? `${(m.peakRss / 2 ** 20).toFixed(0)} MB`
        : `${Math.round(m.opsPerSec)}/s`;
  return `${r.scenario}: ${fig}, cpu ${(m.cpuUserUs + m.cpuSysUs).toFixed(2)} µs`;
}

async function build(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const b = spawn("npm", ["run", "build", "--silent"], { cwd: ROOT, stdio: "ignore" });
    b.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`npm run build exited ${code}`))));
  });
}

/** The stand-in broker, in a process of its own (its CPU is measured as the broker's). */
async function startNullBroker(): Promise<{ url: string; pid: number; stop: () => void }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench/null-broker.ts"), "0"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  // A run that throws still exits, and takes the child with it; a finished run must stop() it,
  // since the child keeps this process's event loop alive.
  process.on("exit", () => child.kill());
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once("data", (d: Buffer) => resolve(Number(/listening (\d+)/.exec(d.toString())?.[1])));
    child.once("exit", (code) => reject(new Error(`bench/null-broker.ts exited ${code}`)));
  });
  return { url: `amqp://guest:guest@127.0.0.1:${port}`, pid: child.pid!, stop: () => child.kill() };
}

const command = `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`;
// warren is measured as built (dist/), like the peers' published JavaScript.
await build();
let brokerPid: number | undefined;
const stand = nullBroker ? await startNullBroker() : undefined;
if (stand) {
  url = stand.url;
  brokerPid = stand.pid;
} else {
  await waitForBroker();
  brokerPid = findBrokerPid(Number(new URL(url).port || 5672));
}
const version = stand ? undefined : await brokerVersion();
log(
  `warren bench (${quick ? "quick" : "full"}): ${rounds} rounds, clients ${clients.join(", ")}, broker pid ${brokerPid ?? "unknown"}`,
);
const results: RoundResult[] = [];

for (let round = 1; round <= rounds && suite.length > 0; round++) {
  for (const client of clients) {
    let scenarios = suite;
    // The two latency runs swap places every other round, so neither always comes first.
    if (round % 2 === 0 && scenarios.includes("latency-default") && scenarios.includes("latency-nodelay"))
      scenarios = scenarios.map((s) =>
        s === "latency-default" ? "latency-nodelay" : s === "latency-nodelay" ? "latency-default" : s,
      );
    const rows = await runJob(
      { client, scenarios, url, brokerPid, sizes, profileDir, round },
      round,
      quick ? 120_000 : 400_000,
    );
    results.push(...rows);
    log(`round ${round} ${client}: ${rows.map(brief).join(" | ")}`);
  }
}
for (let round = 1; round <= memoryRounds; round++) {
  for (const scenario of isolated) {
    for (const client of clients) {
      const rows = await runJob(
        { client, scenarios: [scenario], url, brokerPid, sizes, profileDir, round },
        round,
        300_000,
      );
      results.push(...rows);
      log(`memory round ${round} ${client}: ${rows.map(brief).join(" | ")}`);
    }
  }
}

let codec: CodecRow[] | { error: string };
if (flag("--no-codec")) codec = { error: "skipped (--no-codec)" };
else {
  try {
    const mod = (await import("./codec.js")) as { codecBench: (o: { quick: boolean }) => Promise<CodecRow[]> };
    codec = await mod.codecBench({ quick });
    log(`codec: ${codec.map((c) => `${c.scenario} ${c.client} ${Math.round(c.opsPerSec.median)}/s`).join(" | ")}`);
  } catch (e) {
    codec = { error: e instanceof Error ? e.message : String(e) };
  }
}

let fp: Report["footprint"];
if (flag("--no-footprint")) fp = { error: "skipped (--no-footprint)" };
else {
  try {
    fp = footprint(ROOT, {
      amqplib: "amqplib",
      cloudamqp: "@cloudamqp/amqp-client",
      "rabbitmq-client": "rabbitmq-client",
    });
  } catch (e) {
    fp = { error: e instanceof Error ? e.message : String(e) };
  }
}

const summaries = summarize(results, kinds, clients);
const report: Report = {
  machine: machine(command, version),
  mode: `${quick ? "quick" : "full"}${nullBroker ? ", client only (stand-in broker)" : ""}`,
  broker: nullBroker ? "the stand-in broker of bench/null-broker.ts (counts, not messages)" : undefined,
  rounds,
  sizes,
  summaries,
  codec,
  footprint: fp,
  goals: nullBroker ? clientOnlyGoals(summaries, kinds, codec) : goals(summaries, fp),
  results,
};
const dir = join(ROOT, "bench/results");
mkdirSync(dir, { recursive: true });
// Only a full run of every scenario and client replaces latest.{json,md}, the figures the README quotes.
const label = opt("--label");
const suffix =
  (nullBroker ? "-null" : "") +
  (label === undefined ? "" : `-${label}`) +
  (quick || only || opt("--clients") || flag("--no-codec") || flag("--no-footprint") ? "-partial" : "");
writeFileSync(join(dir, `latest${suffix}.json`), JSON.stringify(report, null, 2) + "\n");
const md = markdown(report, kinds);
writeFileSync(join(dir, `latest${suffix}.md`), md);
process.stdout.write(md);
log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s: bench/results/latest${suffix}.{json,md}`);
stand?.stop();
