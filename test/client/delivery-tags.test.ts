/**
 * DeliveryTags without a socket: what it writes for acks, nacks and give-backs, read from a
 * writer that records every method. The broker refuses (406) a settle of a tag that is not
 * outstanding, a multiple one included, so each test also replays the frames against a model of
 * the broker's outstanding tags and checks that none would be refused.
 */
import { describe, expect, test } from "vitest";
import type { Method } from "../../src/protocol/methods.js";
import { DeliveryTags, type DeferredAcks, type AckWriter } from "../../src/client/delivery-tags.js";

function recorder() {
  const sent: Method[] = [];
  let holder: DeferredAcks | undefined;
  const out: AckWriter = {
    method: (_ch, m) => void sent.push(m),
    encodeMethod: (_ch, m) => void sent.push(m),
    deferAcks: (h) => void (holder = h),
    scheduleFlush: () => undefined,
  };
  return { sent, out, flush: () => holder?.writeDeferred() };
}

/** Replays settles against the broker's view: each names an outstanding tag; returns what stays outstanding. */
function brokerView(delivered: number, sent: Method[]): Set<number> {
  const outstanding = new Set(Array.from({ length: delivered }, (_, i) => i + 1));
  for (const m of sent) {
    if (m.name !== "basic.ack" && m.name !== "basic.nack" && m.name !== "basic.reject") continue;
    expect(outstanding.has(m.deliveryTag), `${m.name} ${m.deliveryTag} names a tag that is not outstanding`).toBe(true);
    const multiple = m.name !== "basic.reject" && m.multiple;
    for (const t of [...outstanding]) if (t === m.deliveryTag || (multiple && t < m.deliveryTag)) outstanding.delete(t);
  }
  return outstanding;
}

describe("delivery tags", () => {
  test("in-order acks are deferred and written as one ack multiple", () => {
    const { sent, out, flush } = recorder();
    const tags = new DeliveryTags(1, out);
    for (let t = 1; t <= 5; t++) tags.delivered(t, false);
    for (let t = 1; t <= 5; t++) expect(tags.ack(t, false)).toBeUndefined();
    flush();
    expect(sent).toEqual([{ name: "basic.ack", deliveryTag: 5, multiple: true }]);
    expect(brokerView(5, sent)).toEqual(new Set());
  });

  test("a tag settled out of order is known settled, and the prefix passes it once the gap is settled", () => {
    const { sent, out, flush } = recorder();
    const tags = new DeliveryTags(1, out);
    for (let t = 1; t <= 4; t++) tags.delivered(t, false);
    tags.settle({ name: "basic.reject", deliveryTag: 2, requeue: false });
    expect(tags.settled(2)).toBe(true);
    expect(tags.settled(1)).toBe(false);
    tags.ack(1, false);
    expect(tags.settled(2)).toBe(true);
    // 3 is next in order: held, and the multiple ack names 3, never the rejected 2.
    tags.ack(3, false);
    flush();
    expect(brokerView(4, sent)).toEqual(new Set([4]));
    expect(sent.at(-1)).toEqual({ name: "basic.ack", deliveryTag: 3, multiple: true });
  });

  test("giveBack: the run that continues the settled prefix goes as one nack multiple, what follows a held delivery one by one", () => {
    const { sent, out, flush } = recorder();
    const tags = new DeliveryTags(1, out);
    for (let t = 1; t <= 10; t++) tags.delivered(t, false);
    tags.ack(1, false);
    tags.ack(2, false);
    // 6 is held by the user (unsettled): 3..5 go together, 7..10 each alone.
    tags.giveBack([10, 3, 4, 5, 7, 8, 9]);
    flush();
    expect(sent.filter((m) => m.name === "basic.nack")).toEqual([
      { name: "basic.nack", deliveryTag: 5, multiple: true, requeue: true },
      ...[7, 8, 9, 10].map((t) => ({ name: "basic.nack", deliveryTag: t, multiple: false, requeue: true })),
    ]);
    expect(brokerView(10, sent)).toEqual(new Set([6]));
    for (const t of [3, 4, 5, 7, 8, 9, 10]) expect(tags.settled(t)).toBe(true);
    expect(tags.settled(6)).toBe(false);
  });

  test("giveBack skips over tags settled ahead of the prefix", () => {
    const { sent, out } = recorder();
    const tags = new DeliveryTags(1, out);
    for (let t = 1; t <= 6; t++) tags.delivered(t, false);
    tags.settle({ name: "basic.nack", deliveryTag: 3, multiple: false, requeue: true });
    tags.giveBack([1, 2, 4, 5, 6]);
    expect(sent.at(-1)).toEqual({ name: "basic.nack", deliveryTag: 6, multiple: true, requeue: true });
    expect(sent).toHaveLength(2);
    expect(brokerView(6, sent)).toEqual(new Set());
  });

  test("noAck deliveries mixed with acked ones do not stop the ack prefix", () => {
    const { sent, out, flush } = recorder();
    const tags = new DeliveryTags(1, out);
    tags.delivered(1, false);
    tags.delivered(2, true); // another consumer's, noAck
    tags.delivered(3, false);
    tags.ack(1, false);
    expect(tags.settled(2)).toBe(true);
    tags.ack(3, false); // next in order after the noAck one: held, not sent alone
    flush();
    expect(sent).toEqual([{ name: "basic.ack", deliveryTag: 3, multiple: true }]);
  });

  test("after a recovery the new channel's tags continue the old ones: settles go out in the new channel's numbers, old tags are refused", () => {
    const { sent, out, flush } = recorder();
    const tags = new DeliveryTags(1, out);
    for (let t = 1; t <= 3; t++) tags.delivered(t, false);
    expect(tags.ack(1, false)).toBeUndefined();
    tags.dropDeferred(); // the connection is lost: the broker requeues 1-3
    tags.restart();
    sent.length = 0;
    // The new channel numbers from 1 again; the user sees 4, 5 (never a tag twice).
    expect([tags.delivered(1, false), tags.delivered(2, false)]).toEqual([4, 5]);
    expect(tags.ack(2, false)?.message).toMatch(/from before the connection was recovered/);
    expect(tags.settled(4)).toBe(false);
    expect(tags.ack(4, false)).toBeUndefined();
    expect(tags.settle({ name: "basic.nack", deliveryTag: 5, multiple: false, requeue: true })).toBeUndefined();
    flush();
    expect(sent).toEqual([
      { name: "basic.ack", deliveryTag: 1, multiple: true },
      { name: "basic.nack", deliveryTag: 2, multiple: false, requeue: true },
    ]);
    expect(brokerView(2, sent)).toEqual(new Set());
  });

  test("settleAll acks every outstanding delivery with tag 0, however some were settled ahead, and counts each once", () => {
    const { sent, out } = recorder();
    const tags = new DeliveryTags(1, out);
    for (let t = 1; t <= 6; t++) tags.delivered(t, false);
    tags.settle({ name: "basic.reject", deliveryTag: 4, requeue: false });
    tags.settleAll({ name: "basic.ack" });
    expect(sent).toEqual([
      { name: "basic.reject", deliveryTag: 4, requeue: false },
      { name: "basic.ack", deliveryTag: 0, multiple: true },
    ]);
    expect([tags.acked, tags.rejected]).toEqual([5, 1]);
    for (let t = 1; t <= 6; t++) expect(tags.settled(t)).toBe(true);
  });
});
