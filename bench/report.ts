/** Turns the collected rounds into the summary (latest.json) and the markdown table (latest.md). */
import type { Footprint } from "./footprint.js";
import type { Machine } from "./machine.js";
import type { Measurement } from "./measure.js";
import { spread, type Spread } from "./stats.js";

export interface RoundResult {
  scenario: string;
  client: string;
  round: number;
  m?: Measurement;
  error?: string;
}

export interface CodecRow {
  scenario: string;
  client: string;
  opsPerSec: { median: number; min: number; max: number };
  bytesPerMsg: number;
}

export interface Summary {
  scenario: string;
  title: string;
  client: string;
  /** The main figure: msg/s, p99 ms, or peak RSS MB. */
  figure: Spread;
  /** The main figure of each round, for comparing clients round against round. */
  byRound: Record<number, number>;
  higherIsBetter: boolean;
  cpuClientUs: Spread;
  cpuBrokerUs: Spread;
  p50?: Spread;
  p999?: Spread;
  peakHeapMB?: Spread;
  baseRssMB?: Spread;
  bytesQueuedMB?: number;
  errors: string[];
}

export interface ScenarioInfo {
  title: string;
  kind: "throughput" | "latency" | "memory";
}

const MB = 1024 * 1024;

export function summarize(
  results: RoundResult[],
  scenarios: Record<string, ScenarioInfo>,
  clients: string[],
): Summary[] {
  const out: Summary[] = [];
  for (const [name, info] of Object.entries(scenarios)) {
    for (const client of clients) {
      const rows = results.filter((r) => r.scenario === name && r.client === client);
      if (rows.length === 0) continue;
      const ms = rows.flatMap((r) => (r.m ? [r.m] : []));
      const main = (m: Measurement) =>
        info.kind === "throughput" ? m.opsPerSec : info.kind === "latency" ? (m.p99 ?? NaN) : (m.peakRss ?? NaN) / MB;
      const s: Summary = {
        scenario: name,
        title: info.title,
        client,
        figure: spread(ms.map(main)),
        byRound: Object.fromEntries(rows.flatMap((r) => (r.m ? [[r.round, main(r.m)]] : []))),
        higherIsBetter: info.kind === "throughput",
        cpuClientUs: spread(ms.map((m) => m.cpuUserUs + m.cpuSysUs)),
        cpuBrokerUs: spread(ms.map((m) => m.brokerCpuUs)),
        errors: rows.flatMap((r) => (r.error ? [r.error] : [])),
      };
      if (info.kind === "latency") {
        s.p50 = spread(ms.map((m) => m.p50 ?? NaN));
        s.p999 = spread(ms.map((m) => m.p999 ?? NaN));
      }
      if (info.kind === "memory") {
        s.peakHeapMB = spread(ms.map((m) => (m.peakHeap ?? NaN) / MB));
        s.baseRssMB = spread(ms.map((m) => (m.baseRss ?? NaN) / MB));
        s.bytesQueuedMB = (ms[0]?.bytesQueued ?? NaN) / MB;
      }
      out.push(s);
    }
  }
  return out;
}

/** warren's advantage over a peer: > 1 means warren is ahead (faster, lower latency, less memory). */
export function advantage(warren: Summary, peer: Summary): number {
  return warren.higherIsBetter ? warren.figure.median / peer.figure.median : peer.figure.median / warren.figure.median;
}

/** In how many of the rounds both ran warren was ahead of the peer, round against round. */
export function roundsAhead(warren: Summary, peer: Summary): string {
  let ahead = 0;
  let both = 0;
  for (const [round, w] of Object.entries(warren.byRound)) {
    const p = peer.byRound[Number(round)];
    if (p === undefined || !Number.isFinite(p) || !Number.isFinite(w)) continue;
    both++;
    if (warren.higherIsBetter ? w > p : w < p) ahead++;
  }
  return `${ahead}/${both}`;
}

/** warren against one other client: a peer's ratio and rounds, raw's ceiling (throughput) or floor (latency, memory). */
function ratioCell(w: Summary, s: Summary, kind: ScenarioInfo["kind"]): string {
  if (s.client === "raw") {
    if (kind === "throughput") return `${((w.figure.median / s.figure.median) * 100).toFixed(0)}% of ceiling`;
    const over = w.figure.median - s.figure.median;
    return `floor (warren ${over < 0 ? "−" : "+"}${Math.abs(over).toFixed(kind === "latency" ? 2 : 0)} ${kind === "latency" ? "ms" : "MB"})`;
  }
  const a = advantage(w, s);
  return `${a.toFixed(2)}×${a < 1 ? " **behind**" : ""} · ${roundsAhead(w, s)}`;
}

function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return "–";
  if (Math.abs(x) >= 10000) return `${(x / 1000).toFixed(1)}k`;
  return x.toFixed(digits);
}

function cell(s: Spread, digits = 0): string {
  if (s.n === 0) return "failed";
  return s.n > 1 ? `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})` : num(s.median, digits);
}

function figureCell(s: Summary, kind: ScenarioInfo["kind"]): string {
  if (s.figure.n === 0) return `failed: ${s.errors[0] ?? "no result"}`;
  if (kind === "throughput") return cell(s.figure);
  if (kind === "latency")
    return `p50 ${num(s.p50!.median, 2)} · **p99 ${cell(s.figure, 2)}** · p99.9 ${num(s.p999!.median, 2)}`;
  return `RSS ${cell(s.figure)} · heap ${num(s.peakHeapMB!.median)} · at start ${num(s.baseRssMB!.median)}`;
}

export interface Report {
  machine: Machine;
  mode: string;
  /** What the clients ran against, when not the local RabbitMQ. */
  broker?: string | undefined;
  rounds: number;
  sizes: unknown;
  summaries: Summary[];
  codec: CodecRow[] | { error: string };
  footprint: Footprint[] | { error: string };
  goals: { goal: string; met: boolean | undefined; detail: string }[];
  results: RoundResult[];
}

export const PEERS = ["amqplib", "cloudamqp", "rabbitmq-client"];

export function goals(summaries: Summary[], footprint: Report["footprint"]): Report["goals"] {
  const get = (sc: string, c: string) => summaries.find((s) => s.scenario === sc && s.client === c);
  const out: Report["goals"] = [];
  const behind: string[] = [];
  for (const sc of new Set(summaries.map((s) => s.scenario))) {
    const w = get(sc, "warren");
    if (!w) continue;
    for (const p of PEERS) {
      const s = get(sc, p);
      if (s && s.figure.n > 0 && w.figure.n > 0 && advantage(w, s) < 1)
        behind.push(`${sc} vs ${p} (${advantage(w, s).toFixed(2)}x)`);
    }
  }
  out.push({
    goal: "warren ahead of every peer in every scenario (median)",
    met: behind.length === 0,
    detail: behind.length ? `behind in: ${behind.join("; ")}` : "ahead everywhere",
  });
  for (const sc of ["publish-16B", "publish-4KiB"]) {
    const w = get(sc, "warren");
    const r = get(sc, "raw");
    if (w && r) {
      const ratio = w.figure.median / r.figure.median;
      out.push({
        goal: `${sc}: throughput >= 85% of the raw-socket ceiling`,
        met: ratio >= 0.85,
        detail: `${(ratio * 100).toFixed(0)}% (${num(w.figure.median)} vs ${num(r.figure.median)} msg/s)`,
      });
    }
  }
  const w16 = get("publish-16B", "warren");
  if (w16) {
    const best = Math.min(...PEERS.map((p) => get("publish-16B", p)?.cpuClientUs.median ?? Infinity));
    out.push({
      goal: "client CPU per 16 B publish <= half the best peer's",
      met: w16.cpuClientUs.median <= best / 2,
      detail: `warren ${w16.cpuClientUs.median.toFixed(2)} µs, best peer ${best.toFixed(2)} µs, raw ${get("publish-16B", "raw")?.cpuClientUs.median.toFixed(2) ?? "–"} µs`,
    });
  }
  for (const sc of ["memory-publish", "memory-naive"]) {
    const w = get(sc, "warren");
    if (!w) continue;
    const best = Math.min(...PEERS.map((p) => get(sc, p)?.figure.median ?? Infinity));
    const frames =
      sc === "memory-naive"
        ? ` (RSS growth ${(w.figure.median - w.baseRssMB!.median).toFixed(0)} MB for ${(w.bytesQueuedMB ?? NaN).toFixed(0)} MB of frames queued)`
        : "";
    out.push({
      goal: `${sc}: peak RSS <= the best peer's`,
      met: w.figure.median <= best,
      detail: `warren ${w.figure.median.toFixed(0)} MB, best peer ${best.toFixed(0)} MB${frames}`,
    });
  }
  const lat = get("latency-default", "warren");
  const floor = get("latency-default", "raw");
  if (lat)
    out.push({
      goal: "fanout p99 < 1 ms at 2,000 msg/s, default options",
      met: lat.figure.median < 1,
      detail: `p99 ${lat.figure.median.toFixed(2)} ms (p50 ${lat.p50!.median.toFixed(2)}, p99.9 ${lat.p999!.median.toFixed(2)})${floor ? `; raw sockets through the same broker: p99 ${floor.figure.median.toFixed(2)} ms` : ""}`,
    });
  const ack = get("consume-ack", "warren");
  if (ack) {
    const best = Math.max(...PEERS.map((p) => get("consume-ack", p)?.figure.median ?? 0));
    out.push({
      goal: "consume with manual ack >= 1.5x the best peer",
      met: ack.figure.median >= 1.5 * best,
      detail: `${(ack.figure.median / best).toFixed(2)}x (${num(ack.figure.median)} vs ${num(best)} msg/s)`,
    });
  }
  if (Array.isArray(footprint)) {
    const own = footprint.find((f) => f.client === "warren");
    const others = footprint.filter((f) => f.client !== "warren");
    if (own) {
      const met = others.every((o) => !(o.packedBytes < own.packedBytes) && o.installedBytes >= own.installedBytes);
      out.push({
        goal: "smallest packed and installed size, type declarations included",
        met: met && own.typesIncluded,
        detail: `warren ${kb(own.packedBytes)} packed, ${kb(own.installedBytes)} installed`,
      });
    }
  }
  return out;
}

/**
 * What bytes one message costs the codec (bench/codec.ts) when the client-only goals were set:
 * "halved" is measured against these.
 */
const CODEC_BYTES_BEFORE: Record<string, number> = { "encode publish 16 B": 348, "decode deliver 16 B": 774 };

/**
 * The goals of the client-only mode, where the clients separate (bench/README.md): every
 * throughput scenario at least 50% of raw and 2x the best peer; the codec 3x amqplib's decoding
 * and 6x its encoding with half the bytes per message; warren's p99 the lowest of all clients
 * and its p50 within 10% of raw's, default options.
 */
export function clientOnlyGoals(
  summaries: Summary[],
  kinds: Record<string, ScenarioInfo>,
  codec: Report["codec"],
): Report["goals"] {
  const get = (sc: string, c: string) => summaries.find((s) => s.scenario === sc && s.client === c && s.figure.n > 0);
  const out: Report["goals"] = [];
  for (const [sc, info] of Object.entries(kinds)) {
    if (info.kind !== "throughput") continue;
    const w = get(sc, "warren");
    if (!w) continue;
    const r = get(sc, "raw");
    const ofRaw = r ? w.figure.median / r.figure.median : NaN;
    out.push({
      goal: `${sc}: >= 50% of raw`,
      met: r ? ofRaw >= 0.5 : undefined,
      detail: r
        ? `${(ofRaw * 100).toFixed(0)}% (${num(w.figure.median)} vs ${num(r.figure.median)} msg/s)`
        : "no raw figure",
    });
    const best = PEERS.map((p) => get(sc, p)).reduce<Summary | undefined>(
      (a, s) => (s && (!a || s.figure.median > a.figure.median) ? s : a),
      undefined,
    );
    const x = best ? w.figure.median / best.figure.median : NaN;
    out.push({
      goal: `${sc}: >= 2x the best peer`,
      met: best ? x >= 2 : undefined,
      detail: best ? `${x.toFixed(2)}x (${best.client} ${num(best.figure.median)} msg/s)` : "no peer figure",
    });
  }
  if (Array.isArray(codec)) {
    const row = (sc: string, c: string) => codec.find((r) => r.scenario === sc && r.client === c);
    for (const [sc, factor] of [
      ["decode deliver 16 B", 3],
      ["decode deliver 4 KiB", 3],
      ["encode publish 16 B", 6],
      ["encode publish 4 KiB", 6],
    ] as const) {
      const w = row(sc, "warren");
      const a = row(sc, "amqplib");
      if (!w || !a) continue;
      const x = w.opsPerSec.median / a.opsPerSec.median;
      out.push({
        goal: `codec ${sc}: >= ${factor}x amqplib`,
        met: x >= factor,
        detail: `${x.toFixed(2)}x (${num(w.opsPerSec.median)} vs ${num(a.opsPerSec.median)}/s)`,
      });
    }
    for (const [sc, before] of Object.entries(CODEC_BYTES_BEFORE)) {
      const w = row(sc, "warren");
      if (w)
        out.push({
          goal: `codec ${sc}: bytes per message <= half of ${before}`,
          met: w.bytesPerMsg <= before / 2,
          detail: `${w.bytesPerMsg.toFixed(0)} B`,
        });
    }
  }
  const w = get("latency-default", "warren");
  const r = get("latency-default", "raw");
  if (w) {
    const clients = [w, ...PEERS.map((p) => get("latency-default", p))].filter((s) => s !== undefined);
    const lowest = clients.every((s) => s.figure.median >= w.figure.median);
    out.push({
      goal: "latency-default: warren's p99 the lowest of all clients",
      met: lowest,
      detail: clients.map((s) => `${s.client} ${s.figure.median.toFixed(2)}`).join(", ") + " ms",
    });
    if (r)
      out.push({
        goal: "latency-default: warren's p50 within 10% of raw's",
        met: w.p50!.median <= 1.1 * r.p50!.median,
        detail: `warren ${w.p50!.median.toFixed(3)} ms, raw ${r.p50!.median.toFixed(3)} ms`,
      });
  }
  return out;
}

function kb(b: number): string {
  return Number.isFinite(b) ? `${(b / 1000).toFixed(1)} kB` : "–";
}

export function markdown(r: Report, kinds: Record<string, ScenarioInfo>): string {
  const m = r.machine;
  const lines: string[] = [];
  lines.push(`# warren benchmarks (${r.mode})`, "");
  lines.push(`- Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, ${m.os}`);
  lines.push(
    r.broker
      ? `- Node ${m.node}; broker: ${r.broker}, on the same machine`
      : `- Node ${m.node}, RabbitMQ ${m.rabbitmq} (local, same machine)`,
  );
  lines.push(`- Date: ${m.date}`);
  lines.push(`- Command: \`${m.command}\``);
  lines.push(
    `- ${r.rounds} interleaved rounds (each client in a fresh child process per round); figures are the median (min–max) over rounds.`,
  );
  lines.push(`- Sizes: \`${JSON.stringify(r.sizes)}\``);
  lines.push("");
  lines.push(
    "Throughput in msg/s (higher is better); latency in ms (lower is better; the spread is that of p99; raw is the floor: hand-made frames on bare sockets through the same broker); memory in MB (peak RSS from the kernel, peak heapUsed sampled; lower is better). \"warren ×\" is warren's advantage over that client: > 1 means warren is ahead, < 1 (marked **behind**) means it is not; after it, the rounds in which warren was ahead of that client, round against round (the rounds share the machine's state, the medians do not). CPU is µs per message, user + system; the broker's is beam.smp's utime + stime over the same span (the broker is shared with nothing else during a run, but other processes on the machine add noise).",
    "",
  );
  lines.push("| scenario | client | median (min–max) | warren × | client CPU µs/msg | broker CPU µs/msg |");
  lines.push("|---|---|---|---|---:|---:|");
  for (const [name, info] of Object.entries(kinds)) {
    const rows = r.summaries.filter((s) => s.scenario === name);
    const w = rows.find((s) => s.client === "warren");
    for (const s of rows) {
      const ratio = w && s !== w && w.figure.n > 0 && s.figure.n > 0 ? ratioCell(w, s, info.kind) : "";
      lines.push(
        `| ${name} | ${s.client} | ${figureCell(s, info.kind)} | ${ratio} | ${num(s.cpuClientUs.median, 2)} | ${num(s.cpuBrokerUs.median, 1)} |`,
      );
    }
  }
  lines.push("", "## Goals", "", "| goal | met | measured |", "|---|---|---|");
  for (const g of r.goals)
    lines.push(`| ${g.goal} | ${g.met === undefined ? "?" : g.met ? "yes" : "**no**"} | ${g.detail} |`);
  lines.push("", "## Codec (no broker; bench/codec.ts)", "");
  if (Array.isArray(r.codec)) {
    lines.push(
      "| scenario | client | median msg/s (min–max) | bytes allocated/msg | warren × |",
      "|---|---|---|---:|---|",
    );
    for (const c of r.codec) {
      const base = r.codec.find((x) => x.scenario === c.scenario && x.client === "warren");
      const ratio = base && c.client !== "warren" ? `${(base.opsPerSec.median / c.opsPerSec.median).toFixed(2)}×` : "";
      lines.push(
        `| ${c.scenario} | ${c.client} | ${num(c.opsPerSec.median)} (${num(c.opsPerSec.min)}–${num(c.opsPerSec.max)}) | ${num(c.bytesPerMsg)} | ${ratio} |`,
      );
    }
  } else lines.push(`codec benchmark failed: ${r.codec.error}`);
  lines.push("", "## Footprint", "");
  if (Array.isArray(r.footprint)) {
    lines.push(
      "| client | package@version | packed | installed (with its dependencies) | runtime deps | types included |",
      "|---|---|---:|---:|---|---|",
    );
    for (const f of r.footprint)
      lines.push(
        `| ${f.client} | ${f.package}@${f.version} | ${kb(f.packedBytes)} | ${kb(f.installedBytes)} | ${f.dependencies.length ? f.dependencies.join(", ") : "none"} | ${f.typesIncluded ? "yes" : "no"} |`,
      );
  } else lines.push(`footprint failed: ${r.footprint.error}`);
  const errs = r.results.filter((x) => x.error);
  if (errs.length) {
    lines.push("", "## Failed runs", "");
    for (const e of errs) lines.push(`- round ${e.round}, ${e.scenario}, ${e.client}: ${e.error}`);
  }
  return lines.join("\n") + "\n";
}
