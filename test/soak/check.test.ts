/**
 * The soak's checker (soak/check.ts) on histories written by hand: each failure it exists to
 * find, found; a clean history passes.
 */
import { describe, expect, test } from "vitest";
import { check, longestStall, summary } from "../../soak/check.js";
import type { ConsumerName, Event } from "../../soak/history.js";

type E = Event extends infer T ? (T extends Event ? Omit<T, "t"> : never) : never;
/** Stamps events 10 ms apart, in order. */
const at = (events: E[]): Event[] => events.map((e, i) => ({ t: i * 10, ...e }) as Event);
const deliveredToAll = (id: string, offset: number): E[] =>
  (["callback", "iterator", "stream"] as ConsumerName[]).map((c) => ({
    k: "delivered",
    c,
    id,
    redelivered: false,
    ...(c === "stream" ? { offset } : {}),
  }));
const clean = (): E[] => [
  { k: "sent", id: "m0" },
  { k: "sent", id: "m1" },
  { k: "confirmed", id: "m0" },
  { k: "confirmed", id: "m1" },
  ...deliveredToAll("m0", 0),
  ...deliveredToAll("m1", 1),
  { k: "stopped" },
];

describe("the soak's checker", () => {
  test("a clean history passes, with its figures", () => {
    const r = check(at(clean()));
    expect(r.failures).toEqual([]);
    expect([r.sent, r.confirmed, r.pending.length, r.stream.last]).toEqual([2, 2, 0, 1]);
    expect(summary(r)).toMatch(/PASS$/);
  });

  test("a fault the tool failed to inject or undo is counted and said, and does not fail the run", () => {
    const fault: E[] = [
      { k: "fault", kind: "alarm", target: "n1", phase: "start" },
      { k: "fault", kind: "alarm", target: "n1", phase: "end", error: "Command failed: rabbitmqctl timed out" },
    ];
    const r = check(at([...fault, ...clean()]));
    expect([r.faultErrors, r.faults.alarm, r.failures.length]).toEqual([1, 1, 0]);
    expect(summary(r)).toMatch(/faults: alarm 1 \(1 failed to inject or undo\);.*PASS$/);
  });

  test("a long run's history (250,000 ids, stream offsets included) is checked: its figures, no stack overflow", () => {
    // Found by the 20-minute run: Math.min(...offsets) overflowed the stack past ~120,000 offsets.
    const events: E[] = [];
    const n = 250_000;
    for (let i = 0; i < n; i++)
      events.push({ k: "sent", id: `m${i}` }, { k: "confirmed", id: `m${i}` }, ...deliveredToAll(`m${i}`, i));
    events.push({ k: "stopped" });
    const r = check(at(events));
    expect([r.failures, r.sent, r.stream.last, r.stream.skipped]).toEqual([[], n, n - 1, 0]);
  });

  test("a confirmed id one consumer never got is a loss, named", () => {
    const events = clean().filter((e) => !(e.k === "delivered" && e.c === "iterator" && e.id === "m1"));
    const r = check(at(events));
    expect(r.consumers.iterator.lost).toEqual(["m1"]);
    expect(r.failures).toEqual(["1 confirmed messages never reached the iterator consumer (first: m1)"]);
  });

  test("an unconfirmed id never delivered is no loss; a rejected publish is counted by its error's name", () => {
    const r = check(
      at([
        { k: "sent", id: "m0" },
        { k: "rejected", id: "m0", error: "ConnectionClosedError: lost" },
        { k: "stopped" },
      ]),
    );
    expect(r.failures).toEqual([]);
    expect(r.rejected).toEqual({ ConnectionClosedError: 1 });
  });

  test("a publish never settled is a hang; a phantom delivery fails", () => {
    const r = check(
      at([{ k: "sent", id: "m0" }, { k: "delivered", c: "callback", id: "zz", redelivered: false }, { k: "stopped" }]),
    );
    expect(r.pending).toEqual(["m0"]);
    expect(r.phantoms).toEqual(["zz"]);
    expect(r.failures).toHaveLength(2);
  });

  test("duplicates are counted, not failed; stream offsets repeated or skipped fail", () => {
    const events = [
      ...clean().slice(0, -1),
      ...deliveredToAll("m1", 1),
      { k: "delivered", c: "stream", id: "m1", redelivered: false, offset: 3 } as E,
      { k: "stopped" } as E,
    ];
    const r = check(at(events));
    expect(r.consumers.callback.duplicates).toBe(1);
    expect(r.stream).toEqual({ repeated: 1, skipped: 1, last: 3 });
    expect(r.failures).toEqual(["1 stream offsets delivered again", "1 stream offsets skipped"]);
  });

  test("unhandled rejections and recorded hangs fail the run", () => {
    const r = check(at([...clean(), { k: "unhandled", error: "Error: boom" }, { k: "hang", what: "closing" }]));
    expect(r.failures).toEqual(["1 unhandled rejections (first: Error: boom)", "hang: closing"]);
  });

  test("a stall counts only time with no fault active, in one stretch", () => {
    // Confirms at 0 and 100; a fault from 20 to 70: the longest stretch is 70..100.
    expect(longestStall(0, 100, [0, 100], [[20, 70]])).toEqual({ ms: 30, from: 70 });
    // No fault: the whole gap.
    expect(longestStall(0, 100, [0, 100], [])).toEqual({ ms: 100, from: 0 });
    // A fault that never ended covers the rest.
    expect(longestStall(0, 100, [0], [[10, 100]])).toEqual({ ms: 10, from: 0 });
    // Overlapping faults.
    expect(
      longestStall(
        0,
        100,
        [],
        [
          [5, 60],
          [40, 90],
        ],
      ),
    ).toEqual({ ms: 10, from: 90 });
    const events: Event[] = [
      { t: 0, k: "sent", id: "m0" },
      { t: 1, k: "confirmed", id: "m0" },
      { t: 40_000, k: "stopped" },
    ];
    expect(check(events).failures).toContain("no confirm for 39999 ms from t=1 ms with no fault active");
    const covered: Event[] = [
      ...events.slice(0, 2),
      { t: 5, k: "fault", kind: "kill", target: "n1", phase: "start" },
      { t: 30_000, k: "fault", kind: "kill", target: "n1", phase: "end" },
      events[2]!,
    ];
    expect(check(covered).stall).toEqual({ ms: 10_000, from: 30_000 });
    expect(check(covered).faults).toEqual({ kill: 1 });
  });
});
