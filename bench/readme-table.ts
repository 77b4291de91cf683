/**
 * The README's table of one run: one row per scenario, the clients side by side.
 *
 *   npx tsx bench/readme-table.ts bench/results/latest-null.json
 *
 * "×" is warren's advantage over the best peer, with the rounds warren was ahead of it (the
 * best peer's figure in bold where warren is behind); "warren / raw" the share of raw's ceiling
 * (throughput), the p50s (latency) or the RSS above raw's (memory).
 */
import { readFileSync } from "node:fs";
import { advantage, PEERS, roundsAhead, type Report, type Summary } from "./report.js";

const UNIT = { throughput: "msg/s", latency: "p99, ms", memory: "peak RSS, MB" } as const;

function kind(s: Summary): keyof typeof UNIT {
  return s.p50 !== undefined ? "latency" : s.baseRssMB !== undefined ? "memory" : "throughput";
}

/** Three significant figures: 2.07M, 258k, 71.1k; latency in ms to 2 places; MB whole. */
function figure(x: number, k: keyof typeof UNIT): string {
  if (k === "latency") return x.toFixed(2);
  if (k === "memory" || x < 1000) return x.toFixed(0);
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  return x >= 1e5 ? `${(x / 1e3).toFixed(0)}k` : `${(x / 1e3).toFixed(1)}k`;
}

const report = JSON.parse(readFileSync(process.argv[2] ?? "bench/results/latest-null.json", "utf8")) as Report;
const get = (sc: string, c: string) =>
  report.summaries.find((s) => s.scenario === sc && s.client === c && s.figure.n > 0);
const rows = [
  "| scenario | warren | amqplib | cloudamqp | rabbitmq-client | raw | warren × best peer | warren / raw | client CPU µs/msg: warren / best peer / raw |",
  "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
];
for (const sc of new Set(report.summaries.map((s) => s.scenario))) {
  const w = get(sc, "warren");
  if (!w) continue;
  const k = kind(w);
  const raw = get(sc, "raw");
  const peers = PEERS.map((p) => get(sc, p)).filter((s) => s !== undefined);
  const best = peers.reduce<Summary | undefined>(
    (a, s) => (a === undefined || advantage(w, s) < advantage(w, a) ? s : a),
    undefined,
  );
  const x = best ? advantage(w, best) : NaN;
  const cells = ["warren", ...PEERS, "raw"].map((c) => {
    const s = get(sc, c);
    if (!s) return "–";
    const f = figure(s.figure.median, k);
    return s === best && x < 1 ? `**${f}**` : f;
  });
  const vsBest = best ? `${x.toFixed(2)}× (${best.client}), ${roundsAhead(w, best)}${x < 1 ? " **behind**" : ""}` : "–";
  const vsRaw = !raw
    ? "–"
    : k === "throughput"
      ? `${((w.figure.median / raw.figure.median) * 100).toFixed(0)}%`
      : k === "latency"
        ? `p50 ${w.p50!.median.toFixed(3)} / ${raw.p50!.median.toFixed(3)}`
        : `+${(w.figure.median - raw.figure.median).toFixed(0)} MB`;
  const cpu = k === "memory" ? "" : [w, best, raw].map((s) => (s ? s.cpuClientUs.median.toFixed(2) : "–")).join(" / ");
  rows.push(`| ${w.title} (${UNIT[k]}) | ${cells.join(" | ")} | ${vsBest} | ${vsRaw} | ${cpu} |`);
}
console.log(rows.join("\n"));
