import { connect, declareRetryTopology } from "../../src/index.js";

const conn = await connect(process.env.AMQP_URL ?? "amqp://localhost");
const ch = await conn.openChannel();

// The queue, a retry queue where a failed message waits 200 ms, and a parking queue for those
// that failed 3 times: durable quorum queues, on any RabbitMQ version.
const jobs = `jobs-${process.pid}`;
const retry = await declareRetryTopology(ch, jobs, { delay: 200, attempts: 3 });
await ch.confirmSelect();
for (const job of ["ok", "flaky", "broken"]) await ch.publish("", jobs, job);

const worker = await conn.openChannel();
worker.on("consumerError", () => {}); // each failure, once more; the output below says it all
await worker.consume(
  jobs,
  async (msg) => {
    const job = msg.body.toString();
    console.log(`${job}: attempt ${retry.attempt(msg)}`);
    if (job === "broken" || (job === "flaky" && retry.attempt(msg) === 1)) throw new Error(`${job} failed`);
  },
  { settle: "auto", retry }, // a failure goes to the retry queue, the last one to the parking queue
);

let parked = await ch.get(retry.parkingQueue, { noAck: true });
while (parked === null) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  parked = await ch.get(retry.parkingQueue, { noAck: true });
}
console.log(`parked: ${parked.body}`);

for (const queue of [jobs, retry.retryQueue, retry.parkingQueue]) await ch.queueDelete(queue);
await retry.close();
await conn.close();
