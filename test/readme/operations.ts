import { connect } from "../../src/index.js";

const conn = await connect(process.env.AMQP_URL ?? "amqp://localhost");
conn.on("state", (state, previous) => console.log(`state: ${previous} -> ${state}`));
console.log(`state: ${conn.state}, ping answered: ${(await conn.ping({ timeout: 2000 })) >= 0}`);

const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });
await ch.confirmSelect();
for (let i = 1; i <= 6; i++) await ch.publish("", queue, `job ${i}`);

const worker = await ch.consume(
  queue,
  async (msg) => {
    console.log(`handled ${msg.body}`);
    // Stop taking work: what was prefetched and not started goes back to the queue, unfailed.
    if (msg.body.toString() === "job 3") await worker.pause();
  },
  { settle: "auto", concurrency: 1 },
);
while (!worker.paused || worker.stats().handlersRunning > 0) await new Promise((resolve) => setTimeout(resolve, 10));
const { publishes, deliveries } = conn.stats();
console.log(`paused; confirmed ${publishes.confirmed}, acked ${deliveries.acked}, rejected ${deliveries.rejected}`);

await worker.resume(); // the same handler and options, a new consumer tag
while (worker.stats().handlersRunning > 0 || conn.stats().deliveries.acked < 6) await new Promise((resolve) => setTimeout(resolve, 10));
await conn.close();
