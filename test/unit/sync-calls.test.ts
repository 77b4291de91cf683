/**
 * SyncCalls without a socket: one synchronous request on the wire at a time, replies matched to
 * the request in flight, a timeout that tells the channel, a signal that takes a queued call out.
 */
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import type { Method } from "../../src/protocol/methods.js";
import { FrameError } from "../../src/protocol/errors.js";
import { SyncCalls } from "../../src/client/sync-calls.js";
import { AbortError, ChannelClosedError, TimeoutError } from "../../src/client/errors.js";

function calls() {
  const sent: string[] = [];
  const timedOut: string[] = [];
  const c = new SyncCalls(
    7,
    (m) => {
      if (m.name === "queue.purge" && m.queue === "bad") throw new RangeError("bad name");
      sent.push(m.name === "queue.purge" ? `purge ${m.queue}` : m.name);
    },
    (err, m) => timedOut.push(`${m.name}: ${err.message}`),
  );
  return { c, sent, timedOut };
}
const purge = (queue: string) => ({ name: "queue.purge", queue, noWait: false }) as const;
const purgeOk = (messageCount: number): Method => ({ name: "queue.purge-ok", messageCount });

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

test("one call on the wire at a time, in order; each resolves with its own reply", async () => {
  const { c, sent } = calls();
  const a = c.call(purge("a"), 1000, {});
  const b = c.call(purge("b"), 1000, {});
  const replies: string[] = [];
  const d = c.call({ name: "basic.qos", prefetchSize: 0, prefetchCount: 5, global: false }, 1000, {
    onReply: (m) => replies.push(m.name),
  });
  expect(sent).toEqual(["purge a"]);
  c.expect(purgeOk(1));
  c.reply(purgeOk(1), purgeOk(1));
  expect(sent).toEqual(["purge a", "purge b"]);
  c.reply(purgeOk(2), purgeOk(2));
  expect(() => c.expect(purgeOk(3))).toThrow(FrameError); // qos is in flight, not a purge
  c.reply({ name: "basic.qos-ok" }, { name: "basic.qos-ok" });
  expect(await a).toEqual(purgeOk(1));
  expect((await b).messageCount).toBe(2);
  expect(await d).toEqual({ name: "basic.qos-ok" });
  expect(replies).toEqual(["basic.qos-ok"]);
  expect(c.busy).toBe(false);
});

test("a reply with nothing in flight is 505 UNEXPECTED_FRAME", () => {
  const { c } = calls();
  let err: unknown;
  try {
    c.expect(purgeOk(0));
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(FrameError);
  expect((err as FrameError).code).toBe(505);
});

test("a call that throws as it is written fails alone; the next goes out", async () => {
  const { c, sent } = calls();
  const bad = c.call(purge("bad"), 1000, {});
  const good = c.call(purge("good"), 1000, {});
  await expect(bad).rejects.toThrow(RangeError);
  expect(sent).toEqual(["purge good"]);
  c.reply(purgeOk(0), purgeOk(0));
  await expect(good).resolves.toEqual(purgeOk(0));
});

test("a timeout rejects the call and tells the channel (a late reply would answer the wrong call); nothing more is sent", async () => {
  const { c, sent, timedOut } = calls();
  const a = c.call(purge("a"), 500, {});
  const b = c.call(purge("b"), 500, {});
  const rejected = expect(a).rejects.toThrow(TimeoutError);
  vi.advanceTimersByTime(499);
  expect(timedOut).toEqual([]);
  vi.advanceTimersByTime(1);
  await rejected;
  expect(timedOut).toEqual(["queue.purge: queue.purge got no reply within 500 ms"]);
  expect(sent).toEqual(["purge a"]);
  c.fail(new ChannelClosedError({ replyCode: 0, replyText: "abandoned", initiatedBy: "library" }));
  await expect(b).rejects.toThrow("abandoned");
});

test("a signal takes a queued call out unsent; in flight, only the caller stops waiting and the reply is still read in turn", async () => {
  const { c, sent } = calls();
  const first = new AbortController();
  const queued = new AbortController();
  const a = c.call(purge("a"), 1000, { signal: first.signal });
  const b = c.call(purge("b"), 1000, { signal: queued.signal });
  const d = c.call(purge("d"), 1000, {});
  queued.abort();
  await expect(b).rejects.toThrow(/aborted before it was sent/);
  first.abort();
  await expect(a).rejects.toThrow(AbortError);
  await expect(a).rejects.toThrow(/after it was sent/);
  expect(sent).toEqual(["purge a"]);
  c.reply(purgeOk(1), purgeOk(1)); // a's reply: dropped, and d goes out
  expect(sent).toEqual(["purge a", "purge d"]);
  c.reply(purgeOk(4), purgeOk(4));
  await expect(d).resolves.toEqual(purgeOk(4));
});

test("basic.get has its own call: the message, or null on get-empty", async () => {
  const { c, sent } = calls();
  const g = c.get({ name: "basic.get", queue: "q", noAck: false }, 1000, {});
  expect(sent).toEqual(["basic.get"]);
  c.expect({ name: "basic.get-empty" });
  c.reply(null, { name: "basic.get-empty" });
  await expect(g).resolves.toBeNull();
});
