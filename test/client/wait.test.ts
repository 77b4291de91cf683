/**
 * Waiters (wait.ts) against a model: a list of who waits, in order. Every operation sequence
 * wakes the same callers in the same order as the model, and the count agrees at each step,
 * through the queue's compaction (past a thousand woken) and its sweep of waiters that left.
 */
import fc from "fast-check";
import { expect, test } from "vitest";
import { AbortError } from "../../src/index.js";
import { Waiters } from "../../src/client/wait.js";

type Op =
  | { op: "wait"; bounded: boolean }
  | { op: "wakeOne" }
  | { op: "wake" }
  | { op: "fail" }
  | { op: "leave"; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("wait" as const), bounded: fc.boolean() }) },
  { weight: 3, arbitrary: fc.constant({ op: "wakeOne" as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("leave" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ op: "wake" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "fail" as const }) },
);

test("wakes in arrival order, skips those that left, counts right, at any length", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 4000 }), async (ops) => {
      const w = new Waiters<number>();
      const model: number[] = []; // ids waiting, in order
      const leavers = new Map<number, AbortController>();
      const woken: number[] = [];
      const expected: number[] = [];
      const rejected: Promise<unknown>[] = [];
      let next = 0;
      for (const o of ops) {
        switch (o.op) {
          case "wait": {
            const id = next++;
            const ac = o.bounded ? new AbortController() : undefined;
            if (ac) leavers.set(id, ac);
            const p = w.wait("x", ac ? { signal: ac.signal } : undefined, () => void woken.push(id));
            rejected.push(
              p.then(
                () => undefined,
                (e: unknown) => e,
              ),
            );
            model.push(id);
            break;
          }
          case "wakeOne": {
            const id = model.shift();
            if (id !== undefined) expected.push(id);
            expect(w.wakeOne(0)).toBe(id !== undefined);
            break;
          }
          case "wake":
            expected.push(...model.splice(0));
            w.wake(0);
            break;
          case "fail":
            model.splice(0);
            w.fail(new Error("failed"));
            break;
          case "leave": {
            const bounded = model.filter((id) => leavers.has(id));
            if (bounded.length === 0) break;
            const id = bounded[o.pick % bounded.length]!;
            model.splice(model.indexOf(id), 1);
            leavers.get(id)!.abort();
            break;
          }
        }
        expect(w.size).toBe(model.length);
      }
      expect(woken).toEqual(expected);
      w.fail(new Error("end"));
      const outcomes = await Promise.all(rejected);
      expect(outcomes.filter((e) => e instanceof AbortError).length).toBe(
        [...leavers.values()].filter((ac) => ac.signal.aborted).length,
      );
    }),
    { numRuns: 60 },
  );
});
