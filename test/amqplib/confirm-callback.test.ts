/**
 * warren/amqplib's confirm channel hands each publish's callback to warren's onConfirm: a
 * callback that throws is the caller's bug, printed as a process warning; it is no unhandled
 * rejection, and the other callbacks and waitForConfirms go on.
 */
import { expect, test } from "vitest";
import * as warren from "../../src/amqplib/index.js";
import { getBrokerUrl } from "../helpers/broker.js";
import { countReaching } from "./oracle.js";

test("a confirm callback that throws is a process warning, not an unhandled rejection; the rest are called back, by id", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  const warned = new Promise<Error>((resolve) => process.once("warning", resolve));
  const model = await warren.connect(await getBrokerUrl());
  try {
    const ch = await model.createConfirmChannel();
    const { queue } = await ch.assertQueue("", { exclusive: true });
    const called: string[] = [];
    ch.sendToQueue(queue, Buffer.from("boom"), {}, () => {
      throw new Error("the caller's bug");
    });
    for (const id of ["m1", "m2", "m3"])
      ch.sendToQueue(queue, Buffer.from(id), {}, (err) => called.push(`${id} ${err === null ? "ok" : String(err)}`));
    await ch.waitForConfirms();
    expect((await warned).message).toMatch(/onConfirm callback threw: Error: the caller's bug/);
    expect(called).toEqual(["m1 ok", "m2 ok", "m3 ok"]);
    expect(await countReaching(ch, queue, 4)).toBe(4);
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
  } finally {
    process.off("unhandledRejection", onUnhandled);
    await model.close();
  }
});
