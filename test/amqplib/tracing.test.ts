/**
 * warren/amqplib with a tracing subscriber (warren:publish, as OpenTelemetry's warren/otel
 * subscribes): a publish it cannot encode throws as it does untraced, and as amqplib's does; the
 * ones it can are traced and arrive.
 */
import diagnostics from "node:diagnostics_channel";
import { expect, test } from "vitest";
import * as warren from "../../src/amqplib/index.js";
import { getBrokerUrl } from "../helpers/broker.js";
import { countReaching } from "./oracle.js";

test("traced, a routing key over 255 bytes throws at the call; the good publishes are traced and all arrive", async () => {
  const trace = diagnostics.tracingChannel("warren:publish");
  const started: string[] = [];
  const subscriber = {
    start: (ctx: unknown) => void started.push((ctx as { routingKey: string }).routingKey),
    end() {},
    asyncStart() {},
    asyncEnd() {},
    error() {},
  };
  trace.subscribe(subscriber);
  const model = await warren.connect(await getBrokerUrl());
  try {
    const ch = await model.createChannel();
    const { queue } = await ch.assertQueue("", { exclusive: true });
    expect(() => ch.sendToQueue("x".repeat(300), Buffer.from("too long a key"))).toThrow(RangeError);
    for (let i = 0; i < 10; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`));
    expect(started.filter((k) => k === queue)).toHaveLength(10);
    expect(await countReaching(ch, queue, 10)).toBe(10);
  } finally {
    trace.unsubscribe(subscriber);
    await model.close();
  }
});
