/**
 * amqplib (promise API), and warren/amqplib driven by the same code. Backpressure idiom:
 * publish() returns false -> wait for the channel's 'drain'.
 */
import { once } from "node:events";
import amqplib from "amqplib";
import { loadWarrenAmqplib } from "../warren-dist.js";
import { type BenchClient, type ConnectOpts, PROBE_EVERY, counter, windowed } from "./types.js";

export function createAmqplib(opts: ConnectOpts): Promise<BenchClient> {
  return drive("amqplib", amqplib, opts);
}

/** An amqplib program, unchanged, on warren/amqplib. */
export async function createWarrenAmqplib(opts: ConnectOpts): Promise<BenchClient> {
  return drive("warren-amqplib", (await loadWarrenAmqplib()) as unknown as Pick<typeof amqplib, "connect">, opts);
}

async function drive(name: string, lib: Pick<typeof amqplib, "connect">, opts: ConnectOpts): Promise<BenchClient> {
  const conn = await lib.connect(opts.url, opts.noDelay === undefined ? {} : { noDelay: opts.noDelay });
  const ch = await conn.createChannel();
  const confirmedEach = async (queue: string, body: Buffer, n: number, window: number) => {
    const c = await conn.createConfirmChannel();
    await windowed(n, window, (_i, done) => {
      c.publish("", queue, body, {}, (err) => done(err ?? undefined));
    });
    await c.close();
  };
  return {
    name,
    async publish(queue, body, n, probe) {
      for (let i = 0; i < n; i++) {
        if (!ch.publish("", queue, body)) await once(ch, "drain");
        if (probe && (i & (PROBE_EVERY - 1)) === 0) probe();
      }
    },
    // A callback per publish is amqplib's only way: both confirm scenarios.
    publishConfirmed: confirmedEach,
    publishConfirmedEach: confirmedEach,
    async naive(queue, body, n, probe) {
      for (let i = 0; i < n; i++) {
        ch.publish("", queue, body);
        if (probe && (i & (PROBE_EVERY - 1)) === 0) probe();
      }
    },
    async consume(queue, n, { handling, prefetch }) {
      const c = await conn.createChannel();
      await c.prefetch(prefetch);
      const count = counter(n);
      const noAck = handling.kind === "noack";
      const { consumerTag } = await c.consume(
        queue,
        noAck
          ? () => count.hit()
          : handling.kind === "ack"
            ? (msg) => {
                if (msg) c.ack(msg);
                count.hit();
              }
            : async (msg) => {
                await null;
                if (msg) c.ack(msg);
                count.hit();
              },
        { noAck },
      );
      await count.done;
      await c.cancel(consumerTag);
      await c.close();
    },
    async subscribe(queue, onMessage) {
      await ch.consume(queue, (msg) => msg && onMessage(msg.content), { noAck: true });
    },
    send(exchange, routingKey, body) {
      ch.publish(exchange, routingKey, body);
    },
    async close() {
      await conn.close();
    },
  };
}
