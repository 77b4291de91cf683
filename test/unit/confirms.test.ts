/**
 * ConfirmWindow without a broker: publishes numbered from 1 as they are written, settled by
 * single and multiple acks and nacks in any order, a bounded window that lets the waiting
 * publishes go in order, basic.return matched to its mandatory publish.
 */
import { expect, test } from "vitest";
import { ConfirmWindow, Notify } from "../../src/client/confirms.js";
import { ChannelClosedError, NackError, ReturnedError } from "../../src/client/errors.js";

/** n publishes; `settled` records each one's outcome by its number, as it happens. */
function publishes(w: ConfirmWindow, n: number, first = 1) {
  const settled: string[] = [];
  for (let i = first; i < first + n; i++) {
    w.add().then(
      () => settled.push(`${i} ack`),
      (e: unknown) =>
        settled.push(`${i} ${e instanceof NackError ? "nack" : e instanceof ReturnedError ? "returned" : String(e)}`),
    );
  }
  return settled;
}
const tick = () => new Promise((r) => setImmediate(r));

test("single and multiple acks and nacks in any order settle each publish once", async () => {
  const w = new ConfirmWindow();
  const settled = publishes(w, 8);
  w.confirm(3, false, false); // a hole before the oldest
  w.confirm(2, true, false); // 1 and 2
  w.confirm(5, false, true);
  w.confirm(6, true, false); // 4 and 6 (3 and 5 are settled already)
  w.confirm(6, true, false); // repeated: ignored
  w.confirm(2, false, false); // long gone: ignored
  await tick();
  expect(settled.sort()).toEqual(["1 ack", "2 ack", "3 ack", "4 ack", "5 nack", "6 ack"]);
  expect(w.count).toBe(2);
  expect([w.confirmed, w.nacked]).toEqual([5, 1]);
  w.confirm(8, true, false);
  await tick();
  expect(settled).toHaveLength(8);
  expect(w.count).toBe(0);
  // Numbering goes on where it was: the next publish is #9.
  const more = publishes(w, 1, 9);
  w.confirm(9, false, false);
  await tick();
  expect(more).toEqual(["9 ack"]);
});

test("waitAll resolves when nothing is left unconfirmed, and fails with the channel", async () => {
  const w = new ConfirmWindow();
  publishes(w, 3);
  let done = false;
  const all = w.waitAll({}).then(() => (done = true));
  w.confirm(2, true, false);
  await tick();
  expect(done).toBe(false);
  w.confirm(3, false, true);
  await all;
  publishes(w, 1, 4);
  const failing = w.waitAll({});
  w.fail(new ChannelClosedError({ replyCode: 404, replyText: "gone", initiatedBy: "server" }));
  await expect(failing).rejects.toThrow("gone");
});

test("a bounded window: a publish past the limit waits, and goes when one is confirmed, in order", async () => {
  const w = new ConfirmWindow();
  w.limit = 2;
  publishes(w, 2);
  expect(w.hasRoom).toBe(false);
  const order: number[] = [];
  const waiting = [3, 4, 5].map((n) => w.whenRoom({}, async () => (order.push(n), w.add())));
  expect(order).toEqual([]);
  w.confirm(1, false, false);
  expect(order).toEqual([3]);
  w.confirm(3, true, false); // 2 and 3: room for two
  expect(order).toEqual([3, 4, 5]);
  expect(w.count).toBe(2);
  w.confirm(5, true, false);
  await Promise.all(waiting);
});

test("a returned mandatory publish rejects with ReturnedError on its ack; the same message unreturned resolves", async () => {
  const w = new ConfirmWindow();
  const body = Buffer.from("m");
  const outcomes: string[] = [];
  for (let i = 1; i <= 2; i++)
    w.add(undefined, { exchange: "x", routingKey: "k", body }).then(
      () => outcomes.push(`${i} ok`),
      (e: unknown) => outcomes.push(`${i} ${(e as Error).name}`),
    );
  w.returned({ exchange: "x", routingKey: "k", replyCode: 312, replyText: "NO_ROUTE" }, Buffer.from("m"));
  w.confirm(2, true, false);
  await tick();
  expect(outcomes).toEqual(["1 ReturnedError", "2 ok"]);
});

test("take() hands back what was unconfirmed, in order; after restart() a new channel numbers from 1", async () => {
  const w = new ConfirmWindow();
  publishes(w, 4);
  w.confirm(2, false, false);
  expect(w.take()).toHaveLength(3);
  expect(w.count).toBe(0);
  w.restart();
  const settled = publishes(w, 1);
  w.confirm(1, false, false);
  await tick();
  expect(settled).toEqual(["1 ack"]);
});

test("onConfirm entries (Notify) beside promise ones: each called once, in the same window, with ack, nack, return or the channel's reason", async () => {
  const w = new ConfirmWindow();
  const calls: string[] = [];
  const notify = (i: number, mandatory?: { exchange: string; routingKey: string; body: Buffer }) =>
    w.track(new Notify((err) => calls.push(`${i} ${err === undefined ? "ack" : err.name}`), undefined, mandatory));
  const promised = publishes(w, 1); // #1, a promise
  notify(2);
  notify(3);
  notify(4, { exchange: "x", routingKey: "k", body: Buffer.from("m") });
  notify(5);
  notify(6);
  w.returned({ exchange: "x", routingKey: "k", replyCode: 312, replyText: "NO_ROUTE" }, Buffer.from("m"));
  w.confirm(2, true, false); // #1, #2
  w.confirm(3, false, true); // #3 nacked
  w.confirm(4, false, false); // #4 acked after its return
  w.confirm(4, true, false); // repeated: nothing called twice
  w.fail(new ChannelClosedError({ replyCode: 404, replyText: "gone", initiatedBy: "server" })); // #5, #6
  await tick();
  expect(promised).toEqual(["1 ack"]);
  expect(calls).toEqual(["2 ack", "3 NackError", "4 ReturnedError", "5 ChannelClosedError", "6 ChannelClosedError"]);
  expect(w.count).toBe(0);
});
