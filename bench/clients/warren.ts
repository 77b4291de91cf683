/** warren, built (dist/). Backpressure idiom: `await ch.publish(...)`. */
import { loadWarren } from "../warren-dist.js";
import { type BenchClient, type ConnectOpts, PROBE_EVERY, counter, windowed } from "./types.js";

const { connect } = await loadWarren();

export async function createWarren(opts: ConnectOpts): Promise<BenchClient> {
  const conn = await connect(opts.noDelay === undefined ? { url: opts.url } : { url: opts.url, noDelay: opts.noDelay });
  const ch = await conn.openChannel();
  return {
    name: "warren",
    async publish(queue, body, n, probe) {
      for (let i = 0; i < n; i++) {
        await ch.publish("", queue, body);
        if (probe && (i & (PROBE_EVERY - 1)) === 0) probe();
      }
    },
    async publishConfirmed(queue, body, n, window) {
      const c = await conn.openChannel();
      // Driven by the same window loop as every peer; maxUnconfirmed at the same size is the
      // library's own bound, which this loop never reaches. (Issuing all n publishes at once and
      // letting maxUnconfirmed hold them back is a third as fast: bench/README.md, "tried".)
      await c.confirmSelect({ maxUnconfirmed: window });
      await windowed(n, window, (_i, done) => {
        c.publish("", queue, body).then(() => done(), done);
      });
      await c.close();
    },
    async naive(queue, body, n, probe) {
      let last: Promise<void> = Promise.resolve();
      for (let i = 0; i < n; i++) {
        last = ch.publish("", queue, body);
        if (probe && (i & (PROBE_EVERY - 1)) === 0) probe();
      }
      await last;
    },
    async consume(queue, n, { noAck, prefetch }) {
      const c = await conn.openChannel();
      await c.prefetch(prefetch);
      const count = counter(n);
      const consumer = await c.consume(
        queue,
        noAck
          ? () => count.hit()
          : (msg) => {
              c.ack(msg);
              count.hit();
            },
        { noAck },
      );
      await count.done;
      await consumer.cancel();
      await c.close();
    },
    async subscribe(queue, onMessage) {
      await ch.consume(queue, (msg) => onMessage(msg.body), { noAck: true });
    },
    send(exchange, routingKey, body) {
      void ch.publish(exchange, routingKey, body);
    },
    async close() {
      await conn.close();
    },
  };
}
