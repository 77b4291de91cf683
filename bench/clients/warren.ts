/** warren, built (dist/). Backpressure idiom: `await ch.publish(...)`. */
import type { Publication } from "../../src/index.js";
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
      // warren's own way to publish many with confirms: publishBatch, one promise a batch. Two
      // batches of half the window in flight keep as many publishes unconfirmed as the peers'
      // loop does (the same `windowed`, over batches); maxUnconfirmed at the same size is the
      // library's own bound. (Issuing all n publishes at once and letting maxUnconfirmed hold
      // them back is a third as fast: bench/README.md, "tried".)
      await c.confirmSelect({ maxUnconfirmed: window });
      const size = Math.max(1, window >> 1);
      const batch: Publication[] = new Array<Publication>(size).fill({ exchange: "", routingKey: queue, body });
      await windowed(Math.ceil(n / size), 2, (b, done) => {
        const count = Math.min(size, n - b * size);
        c.publishBatch(count === size ? batch : batch.slice(0, count)).then(() => done(), done);
      });
      await c.close();
    },
    async publishConfirmedEach(queue, body, n, window) {
      const c = await conn.openChannel();
      await c.confirmSelect();
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
    async consume(queue, n, { handling, prefetch }) {
      const c = await conn.openChannel();
      await c.prefetch(prefetch);
      const count = counter(n);
      const consumer =
        handling.kind === "async"
          ? await c.consume(queue, async () => count.hit(), { settle: "auto", concurrency: handling.concurrency })
          : await c.consume(
              queue,
              handling.kind === "noack"
                ? () => count.hit()
                : (msg) => {
                    msg.ack();
                    count.hit();
                  },
              { noAck: handling.kind === "noack" },
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
