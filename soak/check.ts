/**
 * The checker: reads a soak's history after the fact and says what happened to every message.
 *
 * - A confirmed id that a consumer never got is a loss (each consumer reads its own queue, which
 *   the exchange fans every publish out to). Anything delivered that was never sent is a phantom.
 * - Deliveries beyond the first of an id are duplicates: expected (at-least-once) after a
 *   redelivery or a republish, and counted.
 * - Every publish promise must settle (confirmed, nacked or rejected): one still pending at the
 *   end is a hang.
 * - The stream consumer reads offsets in order from the start of a stream made for the run: an
 *   offset delivered twice is a replay, one never delivered between the first and the last a skip.
 * - A stall is the longest stretch, while publishing and while no fault was active, without a
 *   confirm.
 */
import { CONSUMERS, type ConsumerName, type Event, type FaultKind } from "./history.js";

export interface ConsumerFigures {
  delivered: number;
  distinct: number;
  duplicates: number;
  redelivered: number;
  /** Confirmed ids this consumer never got. */
  lost: string[];
}

export interface Report {
  sent: number;
  confirmed: number;
  nacked: number;
  /** Publishes rejected, by the error's first word (its class name). */
  rejected: Record<string, number>;
  pending: string[];
  consumers: Record<ConsumerName, ConsumerFigures>;
  phantoms: string[];
  stream: { repeated: number; skipped: number; last: number };
  stall: { ms: number; from: number };
  faults: Partial<Record<FaultKind, number>>;
  /** Faults whose injection or undoing failed (the tool's trouble, not the client's). */
  faultErrors: number;
  memory: { start?: { rss: number; heapUsed: number }; end?: { rss: number; heapUsed: number } };
  unhandled: string[];
  hangs: string[];
  /** Why the run failed; empty when it passed. */
  failures: string[];
}

export interface CheckOptions {
  /** A stall longer than this fails the run (default 30 s). */
  stallLimitMs?: number;
}

export function check(events: readonly Event[], options: CheckOptions = {}): Report {
  const stallLimit = options.stallLimitMs ?? 30_000;
  const sent = new Set<string>();
  const settled = new Set<string>();
  const confirmed = new Set<string>();
  const confirmTimes: number[] = [];
  const rejected: Record<string, number> = {};
  let nacked = 0;
  const seen = Object.fromEntries(CONSUMERS.map((c) => [c, new Map<string, number>()])) as Record<
    ConsumerName,
    Map<string, number>
  >;
  const redelivered = Object.fromEntries(CONSUMERS.map((c) => [c, 0])) as Record<ConsumerName, number>;
  const offsets = new Map<number, number>();
  const phantoms = new Set<string>();
  const faults: Partial<Record<FaultKind, number>> = {};
  let faultErrors = 0;
  const openFaults = new Map<string, number>();
  const windows: [number, number][] = [];
  const memory: Report["memory"] = {};
  const unhandled: string[] = [];
  const hangs: string[] = [];
  let spanStart: number | undefined;
  let spanEnd: number | undefined;

  for (const e of events) {
    switch (e.k) {
      case "sent":
        sent.add(e.id);
        spanStart ??= e.t;
        break;
      case "confirmed":
        settled.add(e.id);
        confirmed.add(e.id);
        confirmTimes.push(e.t);
        break;
      case "nacked":
        settled.add(e.id);
        nacked += 1;
        break;
      case "rejected": {
        settled.add(e.id);
        const name = e.error.split(/[:\s]/, 1)[0] || "Error";
        rejected[name] = (rejected[name] ?? 0) + 1;
        break;
      }
      case "delivered": {
        if (!sent.has(e.id)) phantoms.add(e.id);
        const count = seen[e.c];
        count.set(e.id, (count.get(e.id) ?? 0) + 1);
        if (e.redelivered) redelivered[e.c] += 1;
        if (e.offset !== undefined) offsets.set(e.offset, (offsets.get(e.offset) ?? 0) + 1);
        break;
      }
      case "fault": {
        const key = `${e.kind} ${e.target}`;
        if (e.phase === "start") {
          faults[e.kind] = (faults[e.kind] ?? 0) + 1;
          openFaults.set(key, e.t);
        } else {
          if (e.error !== undefined) faultErrors++;
          const from = openFaults.get(key);
          if (from !== undefined) windows.push([from, e.t]);
          openFaults.delete(key);
        }
        break;
      }
      case "memory":
        memory[e.when] = { rss: e.rss, heapUsed: e.heapUsed };
        break;
      case "unhandled":
        unhandled.push(e.error);
        break;
      case "hang":
        hangs.push(e.what);
        break;
      case "stopped":
        spanEnd = e.t;
        break;
      default:
        break;
    }
  }
  const end = spanEnd ?? events.at(-1)?.t ?? 0;
  for (const from of openFaults.values()) windows.push([from, end]);

  const consumers = {} as Record<ConsumerName, ConsumerFigures>;
  for (const c of CONSUMERS) {
    const count = seen[c];
    let delivered = 0;
    for (const n of count.values()) delivered += n;
    consumers[c] = {
      delivered,
      distinct: count.size,
      duplicates: delivered - count.size,
      redelivered: redelivered[c],
      lost: [...confirmed].filter((id) => !count.has(id)),
    };
  }

  let repeated = 0;
  for (const n of offsets.values()) repeated += n - 1;
  // A loop, not Math.min(...offsets): a 20-minute run has 240,000 offsets, past the call stack's room for arguments.
  let first = Infinity;
  let last = -1;
  for (const o of offsets.keys()) {
    if (o < first) first = o;
    if (o > last) last = o;
  }
  if (offsets.size === 0) first = 0;
  const skipped = offsets.size > 0 ? last - first + 1 - offsets.size : 0;

  const stall = longestStall(spanStart ?? 0, end, confirmTimes, windows);
  const pending = [...sent].filter((id) => !settled.has(id));

  const failures: string[] = [];
  for (const c of CONSUMERS)
    if (consumers[c].lost.length > 0)
      failures.push(
        `${consumers[c].lost.length} confirmed messages never reached the ${c} consumer (first: ${consumers[c].lost[0]})`,
      );
  if (phantoms.size > 0) failures.push(`${phantoms.size} delivered messages were never sent`);
  if (pending.length > 0) failures.push(`${pending.length} publishes never settled (first: ${pending[0]})`);
  if (repeated > 0) failures.push(`${repeated} stream offsets delivered again`);
  if (skipped > 0) failures.push(`${skipped} stream offsets skipped`);
  if (first !== 0 && offsets.size > 0) failures.push(`the stream consumer started at offset ${first}, not 0`);
  if (stall.ms > stallLimit)
    failures.push(`no confirm for ${stall.ms} ms from t=${stall.from} ms with no fault active`);
  if (unhandled.length > 0) failures.push(`${unhandled.length} unhandled rejections (first: ${unhandled[0]})`);
  for (const what of hangs) failures.push(`hang: ${what}`);

  return {
    sent: sent.size,
    confirmed: confirmed.size,
    nacked,
    rejected,
    pending,
    consumers,
    phantoms: [...phantoms],
    stream: { repeated, skipped, last },
    stall,
    faults,
    faultErrors,
    memory,
    unhandled,
    hangs,
    failures,
  };
}

/**
 * The longest stretch of [start, end] with no confirm in it and no fault window over it: each
 * gap between confirms is cut by the fault windows, and the longest piece left counts.
 */
export function longestStall(
  start: number,
  end: number,
  confirmTimes: readonly number[],
  windows: readonly [number, number][],
): { ms: number; from: number } {
  const points = [start, ...[...confirmTimes].filter((t) => t >= start && t <= end).sort((a, b) => a - b), end];
  const sorted = [...windows].sort((a, b) => a[0] - b[0]);
  let best = { ms: 0, from: start };
  for (let i = 1; i < points.length; i++) {
    let cursor = points[i - 1]!;
    const gapEnd = points[i]!;
    for (const [from, to] of sorted) {
      if (to <= cursor || from >= gapEnd) continue;
      if (from - cursor > best.ms) best = { ms: from - cursor, from: cursor };
      cursor = Math.max(cursor, to);
    }
    if (gapEnd - cursor > best.ms) best = { ms: gapEnd - cursor, from: cursor };
  }
  return best;
}

const mb = (bytes: number | undefined): string => (bytes === undefined ? "?" : `${(bytes / 1048576).toFixed(0)} MB`);

/** The report's one line of figures. */
export function summary(r: Report): string {
  const rejected =
    Object.entries(r.rejected)
      .map(([k, n]) => `${n} ${k}`)
      .join(", ") || "0";
  const perConsumer = CONSUMERS.map(
    (c) => `${c} ${r.consumers[c].lost.length}/${r.consumers[c].duplicates}/${r.consumers[c].redelivered}`,
  ).join(", ");
  const faults =
    Object.entries(r.faults)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ") || "none";
  return (
    `sent ${r.sent}, confirmed ${r.confirmed}, nacked ${r.nacked}, rejected ${rejected}, pending ${r.pending.length}; ` +
    `lost/duplicates/redelivered: ${perConsumer}; phantoms ${r.phantoms.length}; ` +
    `stream offsets 0..${r.stream.last}, repeated ${r.stream.repeated}, skipped ${r.stream.skipped}; ` +
    `longest stall ${r.stall.ms} ms; faults: ${faults}${r.faultErrors > 0 ? ` (${r.faultErrors} failed to inject or undo)` : ""}; ` +
    `rss ${mb(r.memory.start?.rss)} -> ${mb(r.memory.end?.rss)}, heap ${mb(r.memory.start?.heapUsed)} -> ${mb(r.memory.end?.heapUsed)}; ` +
    `unhandled ${r.unhandled.length}; ${r.failures.length === 0 ? "PASS" : `FAIL: ${r.failures.join("; ")}`}`
  );
}
