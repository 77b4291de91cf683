/**
 * @cloudamqp/amqp-client. basicPublish returns a promise settled by the socket's write
 * callback; awaiting each one serialises publishes on write completions, so the idiom used here
 * is to await them in batches of 1000.
 */
import { AMQPClient } from "@cloudamqp/amqp-client";
import { type BenchClient, type ConnectOpts, PROBE_EVERY, counter, publishInBatches, windowed } from "./types.js";

export async function createCloudamqp(opts: ConnectOpts): Promise<BenchClient> {
  const client = new AMQPClient(opts.url);
  const conn = await client.connect();
  if (opts.noDelay !== undefined) client.socket?.setNoDelay(opts.noDelay);
  const ch = await conn.channel();
  const confirmedEach = async (queue: string, body: Buffer, n: number, window: number) => {
    const c = await conn.channel();
    await c.confirmSelect();
    await windowed(n, window, (_i, done) => {
      c.basicPublish("", queue, body).then(() => done(), done);
    });
    await c.close();
  };
  return {
    name: "cloudamqp",
    publish(queue, body, n, probe) {
      return publishInBatches(n, () => ch.basicPublish("", queue, body), probe);
    },
    // A promise per publish is the library's only way: both confirm scenarios.
    publishConfirmed: confirmedEach,
    publishConfirmedEach: confirmedEach,
    async naive(queue, body, n, probe) {
      let last: Promise<unknown> = Promise.resolve();
      for (let i = 0; i < n; i++) {
        last = ch.basicPublish("", queue, body);
        if (probe && (i & (PROBE_EVERY - 1)) === 0) probe();
      }
      await last;
    },
    async consume(queue, n, { handling, prefetch }) {
      const c = await conn.channel();
      await c.prefetch(prefetch);
      const count = counter(n);
      const noAck = handling.kind === "noack";
      const consumer = await c.basicConsume(
        queue,
        { noAck },
        noAck
          ? () => count.hit()
          : handling.kind === "ack"
            ? (msg) => {
                void msg.ack();
                count.hit();
              }
            : async (msg) => {
                await null;
                void msg.ack();
                count.hit();
              },
      );
      await count.done;
      await consumer.cancel();
      await c.close();
    },
    async subscribe(queue, onMessage) {
      await ch.basicConsume(queue, { noAck: true }, (msg) => {
        if (msg.body) onMessage(msg.body as Uint8Array);
      });
    },
    send(exchange, routingKey, body) {
      void ch.basicPublish(exchange, routingKey, body);
    },
    async close() {
      await conn.close();
    },
  };
}
