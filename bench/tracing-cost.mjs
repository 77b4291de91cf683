// The workload for measuring what warren's tracing channels cost with nobody subscribed
// (bench/README.md, "Tracing channels"): 20,000 publishes of 16 B and their 20,000 deliveries
// through one connection, with no subscriber. Run it under callgrind, which counts instructions
// whatever else the machine does, once for each build to compare:
//
//   AMQP_URL=... valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/tracing-cost.mjs <checkout> [n]
//
// <checkout> is a directory with a built dist/ (npm run build).
const { connect } = await import(`${process.argv[2] ?? "."}/dist/index.js`);
const n = Number(process.argv[3] ?? 20_000);
const conn = await connect(process.env.AMQP_URL);
const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });
const body = Buffer.alloc(16);
let last;
for (let i = 0; i < n; i++) {
  last = ch.publish("", queue, body);
  if ((i & 1023) === 1023) await last;
}
await last;
let got = 0;
await new Promise((resolve) => void ch.consume(queue, () => ++got === n && resolve(), { noAck: true }));
await conn.close();
