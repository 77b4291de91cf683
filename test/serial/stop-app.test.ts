/**
 * The broker's application stopped and started again (`rabbitmqctl stop_app` / `start_app`):
 * RabbitMQ closes every connection with 320 CONNECTION_FORCED ("shutdown") and refuses new
 * ones until it is back. A plain connection must end with a typed error, without a crash or a
 * hang; a recovering one must keep trying and come back with its consumers.
 *
 * Serial project: the whole broker goes down for a moment. start_app always runs in `finally`.
 */
import { once } from "node:events";
import { expect, test } from "vitest";
import { ConnectionClosedError, connect, type Message, type ReconnectingInfo } from "../../src/index.js";
import { eventually, outcome, useConnections } from "../client/util.js";
import { getBrokerUrl, rabbitmqctl } from "../helpers/broker.js";

const open = useConnections();

test("stop_app: a plain connection gets a typed ConnectionClosedError and its calls fail; a recovering one retries until start_app and its consumer resumes", async () => {
  const plain = await open();
  const plainCh = await plain.openChannel();
  const { queue: plainQueue } = await plainCh.queueDeclare("", { exclusive: true });
  const plainStream = plainCh.consume(plainQueue, { noAck: true });
  await plainStream.consumerTag;
  const plainClosed = once(plain, "close") as Promise<[unknown]>;

  const rec = await connect({ url: await getBrokerUrl(), recovery: { initialDelay: 100, maxDelay: 500 } });
  try {
    const ch = await rec.openChannel();
    let { queue } = await ch.queueDeclare("", { exclusive: true });
    rec.on("queueRenamed", ({ from, to }) => {
      if (from === queue) queue = to;
    });
    const got: Message[] = [];
    await ch.consume(queue, (m) => void got.push(m), { noAck: true });
    const failedAttempt = new Promise<ReconnectingInfo>((resolve) =>
      rec.on("reconnecting", (info) => info.attempt >= 2 && resolve(info)),
    );
    const recovered = once(rec, "topologyRecovered");

    let plainError: unknown;
    try {
      await rabbitmqctl(["stop_app"]);
      [plainError] = await plainClosed;
      // At least one reconnect attempt has been refused while the application is down.
      const info = await failedAttempt;
      expect(info.error).toBeInstanceOf(ConnectionClosedError);
    } finally {
      await rabbitmqctl(["start_app"]);
    }

    // The plain connection: 320 CONNECTION_FORCED (or the socket closing under it), typed; no hang.
    expect(plainError).toBeInstanceOf(ConnectionClosedError);
    expect([0, 320]).toContain((plainError as ConnectionClosedError).replyCode);
    expect(plain.closed).toBe(true);
    const next = await outcome(plainStream.next());
    expect(next.ok === false && next.error).toBeInstanceOf(ConnectionClosedError);
    await expect(plainCh.publish("", plainQueue, "x")).rejects.toBeInstanceOf(ConnectionClosedError);
    await plain.close();

    // The recovering connection: back, with its consumer on its (renamed) queue.
    await recovered;
    expect(rec.closed).toBe(false);
    await ch.publish("", queue, "after restart");
    await eventually(() => got.length === 1, "the message after the restart");
    expect(got[0]!.body.toString()).toBe("after restart");
  } finally {
    await rec.close();
  }
});
