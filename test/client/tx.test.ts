/**
 * Transactions (spec 1.9 class tx): after tx.select, publishes and acks take effect only on
 * tx.commit and are discarded by tx.rollback; commit/rollback on a channel that never selected
 * is refused (406 PRECONDITION_FAILED).
 */
import { describe, expect, test } from "vitest";
import { PreconditionFailedError, type Channel } from "../../src/index.js";
import { outcome, queueCounts, untilReady, useConnections } from "./util.js";

const open = useConnections();

/** A second channel's view of the queue after a round trip on the first: no polling needed for a committed state. */
async function ready(probe: Channel, queue: string): Promise<number> {
  return (await queueCounts(probe, queue)).messageCount;
}

describe("tx", () => {
  test("publishes are invisible until commit, and rollback discards them", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const probe = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    await ch.txSelect();
    await ch.publish("", queue, "1");
    await ch.publish("", queue, "2");
    await ch.queueDeclare(queue, { passive: true }); // round trip: both publishes have been read by the broker
    expect(await ready(probe, queue)).toBe(0);
    await ch.txCommit();
    expect(await ready(probe, queue)).toBe(2);
    await ch.publish("", queue, "3");
    await ch.txRollback();
    expect(await ready(probe, queue)).toBe(2);
    // The channel stays transactional: the next commit only carries what came after the rollback.
    await ch.publish("", queue, "4");
    await ch.txCommit();
    const bodies: string[] = [];
    for (let m = await probe.get(queue, { noAck: true }); m; m = await probe.get(queue, { noAck: true }))
      bodies.push(m.body.toString());
    expect(bodies).toEqual(["1", "2", "4"]);
  });

  test("acks take effect on commit; rolled-back acks leave the messages unacked (back in the queue when the channel closes)", async () => {
    const conn = await open();
    const setup = await conn.openChannel();
    const { queue } = await setup.queueDeclare("", { exclusive: true });
    await setup.confirmSelect();
    for (const b of ["a", "b", "c"]) await setup.publish("", queue, b);

    const ch = await conn.openChannel();
    await ch.txSelect();
    const a = (await ch.get(queue))!;
    const b = (await ch.get(queue))!;
    const c = (await ch.get(queue))!;
    ch.ack(a);
    await ch.txCommit(); // a is gone for good
    ch.ack(b);
    ch.ack(c);
    await ch.txRollback(); // b and c stay unacked
    await ch.close();
    await untilReady(setup, queue, 2);
    const left = [(await setup.get(queue, { noAck: true }))!, (await setup.get(queue, { noAck: true }))!].map((m) =>
      m.body.toString(),
    );
    expect(left).toEqual(["b", "c"]);
  });

  test("commit or rollback without tx.select is refused with 406", async () => {
    const conn = await open();
    for (const op of ["txCommit", "txRollback"] as const) {
      const ch = await conn.openChannel();
      const r = await outcome(ch[op]());
      const err = (r as { error: PreconditionFailedError }).error;
      expect(err).toBeInstanceOf(PreconditionFailedError);
      expect(err.method).toBe(op === "txCommit" ? "tx.commit" : "tx.rollback");
    }
  });
});
