import { connect } from "../../src/index.js";

const conn = await connect(process.env.AMQP_URL ?? "amqp://localhost");
const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });
await ch.confirmSelect();
for (let n = 1; n <= 6; n++) await ch.publish("", queue, String(n));

const handled: number[] = [];
let allHandled!: () => void;
const done = new Promise<void>((resolve) => (allHandled = resolve));

// A handler's failure is reported here (without a listener: a process warning).
ch.on("consumerError", (err, msg) => console.log(`task ${msg.body} failed: ${(err as Error).message}`));

const consumer = await ch.consume(
  queue,
  async (msg) => {
    const n = Number(msg.body.toString());
    if (n === 3 && !msg.fields.redelivered) throw new Error("not this time"); // rejected, requeued once
    await new Promise((resolve) => setTimeout(resolve, 10 * n)); // the work
    handled.push(n);
    if (handled.length === 6) allHandled();
  },
  {
    concurrency: 2, // two handlers at a time; the prefetch fits (4)
    settle: "auto", // acked when the handler resolves, rejected when it throws
    resubscribe: true, // cancelled by the broker or its channel closed: consume again, with backoff
  },
);
consumer.on("resubscribed", ({ to }) => console.log(`consuming again as ${to}`));

await done;
console.log(`handled ${handled.sort((a, b) => a - b).join(" ")}`);
// Waits for running handlers (none now) and their acks, then closes.
await conn.close();
