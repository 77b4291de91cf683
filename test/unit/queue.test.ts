/** Queue (src/client/queue.ts), the client's one FIFO, against a plain array as the model. */
import fc from "fast-check";
import { expect, test } from "vitest";
import { Queue } from "../../src/client/queue.js";

test("any sequence of pushes, shifts, skips, removes and retains matches an array's, across compactions", () => {
  const op = fc.oneof(
    fc.record({ push: fc.integer({ min: 1, max: 1500 }) }),
    fc.record({ shift: fc.integer({ min: 1, max: 1500 }) }),
    fc.record({ remove: fc.nat() }),
    fc.record({ skip: fc.integer({ min: 0, max: 2000 }) }),
    fc.record({ retainOdd: fc.constant(true) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const q = new Queue<number>();
      let model: number[] = [];
      let next = 0;
      for (const o of ops) {
        if ("push" in o) for (let i = 0; i < o.push; i++) (q.push(next), model.push(next++));
        else if ("shift" in o) for (let i = 0; i < o.shift; i++) expect(q.shift()).toBe(model.shift());
        else if ("skip" in o) {
          q.skip(o.skip);
          model.splice(0, o.skip);
        } else if ("remove" in o) {
          const item = model[o.remove % Math.max(1, model.length)];
          expect(q.remove(item ?? -1)).toBe(item !== undefined);
          if (item !== undefined) model.splice(model.indexOf(item), 1);
        } else {
          q.retain((n) => n % 2 === 1);
          model = model.filter((n) => n % 2 === 1);
        }
        expect(q.length).toBe(model.length);
        expect(q.peek()).toBe(model[0]);
        expect(q.at(model.length - 1)).toBe(model.at(-1));
      }
      expect([...q]).toEqual(model);
      expect(q.drain()).toEqual(model);
      expect(q.length).toBe(0);
    }),
    { numRuns: 60 },
  );
});

test("set() makes holes in place; at() and set() outside the queue do nothing", () => {
  const q = new Queue<number | undefined>();
  for (let i = 0; i < 5; i++) q.push(i);
  q.shift();
  q.set(1, undefined);
  q.set(-1, 99);
  q.set(4, 99);
  expect([...q]).toEqual([1, undefined, 3, 4]);
  expect(q.at(-1)).toBeUndefined();
  expect(q.at(4)).toBeUndefined();
});

test("what it holds follows what is queued: a long-running queue is cut down as it is taken from", () => {
  const q = new Queue<number>();
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 3000; i++) q.push(i);
    for (let i = 0; i < 2990; i++) q.shift();
  }
  expect(q.length).toBe(500);
  // The backing array: what is queued, plus taken slots short of a compaction (under 2x and 1024).
  const backing = (q as unknown as { items: unknown[] }).items.length;
  expect(backing).toBeLessThan(2 * 500 + 1024 + 3000);
});
