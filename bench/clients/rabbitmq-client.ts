/**
 * rabbitmq-client (its low-level Channel API, the fastest it offers). basicPublish returns a
 * promise per publish; as with @cloudamqp/amqp-client they are awaited in batches of 1000.
 */
import { Connection } from "rabbitmq-client";
import { type BenchClient, type ConnectOpts, PROBE_EVERY, counter, publishInBatches, windowed } from "./types.js";

export async function createRabbitmqClient(opts: ConnectOpts): Promise<BenchClient> {
  const conn = new Connection(
    opts.noDelay === undefined ? { url: opts.url } : { url: opts.url, noDelay: opts.noDelay },
  );
  await conn.onConnect(10000);
  const ch = await conn.acquire();
  const confirmedEach = async (queue: string, body: Buffer, n: number, window: number) => {
    const c = await conn.acquire();
    await c.confirmSelect();
    await windowed(n, window, (_i, done) => {
      c.basicPublish({ routingKey: queue }, body).then(() => done(), done);
    });
    await c.close();
  };
  return {
    name: "rabbitmq-client",
    publish(queue, body, n, probe) {
      return publishInBatches(n, () => ch.basicPublish({ routingKey: queue }, body), probe);
    },
    // A promise per publish is the library's only way: both confirm scenarios.
    publishConfirmed: confirmedEach,
    publishConfirmedEach: confirmedEach,
    async naive(queue, body, n, probe) {
      let last: Promise<unknown> = Promise.resolve();
      for (let i = 0; i < n; i++) {
        last = ch.basicPublish({ routingKey: queue }, body);
        if (probe && (i & (PROBE_EVERY - 1)) === 0) probe();
      }
      await last;
    },
    async consume(queue, n, { handling, prefetch }) {
      const c = await conn.acquire();
      await c.basicQos({ prefetchCount: prefetch });
      const count = counter(n);
      const noAck = handling.kind === "noack";
      // Deliveries still arriving after the cancel and close: left to be requeued (basicAck would throw).
      const ack = (tag: number) => !noAck && c.active && c.basicAck({ deliveryTag: tag });
      const { consumerTag } = await c.basicConsume(
        { queue, noAck },
        handling.kind === "async"
          ? async (msg) => {
              await null;
              ack(msg.deliveryTag);
              count.hit();
            }
          : (msg) => {
              ack(msg.deliveryTag);
              count.hit();
            },
      );
      await count.done;
      await c.basicCancel(consumerTag);
      await c.close();
    },
    async subscribe(queue, onMessage) {
      await ch.basicConsume({ queue, noAck: true }, (msg) => onMessage(msg.body as Uint8Array));
    },
    send(exchange, routingKey, body) {
      void ch.basicPublish({ exchange, routingKey }, body);
    },
    async close() {
      await ch.close();
      await conn.close();
    },
  };
}
