/**
 * Failover on a real three-node RabbitMQ 4.3 cluster (scripts/rabbitmq43.sh cluster-start): for
 * each client with any recovery, a publisher in confirm mode and a manual-ack consumer, both
 * connected to c1, on a quorum queue whose leader is on c2. c1 is killed (SIGKILL) two seconds
 * in. Reported per client: the time from the kill to the first confirmed publish after it and to
 * the first delivery after it, and whether anything confirmed was lost or delivered twice
 * (counted by message id against what the consumer got and what is left in the queue).
 *
 *   npm run bench:failover        (3 rounds, about 5 minutes; FAILOVER_ROUNDS=1 for one;
 *                                 writes bench/results/failover.{md,json})
 *
 * amqplib has no recovery of its own: it is reported as such, not measured. cloudamqp's session
 * reconnects to one URL only, so with its node dead it waits for that node.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { AMQPSession } from "@cloudamqp/amqp-client";
import { Connection as RabbitClient } from "rabbitmq-client";
import { connect } from "../src/index.js";

const ROOT = new URL("..", import.meta.url).pathname;
const sh = (...args: string[]) =>
  promisify(execFile)("bash", [`${ROOT}scripts/rabbitmq43.sh`, ...args], { timeout: 180_000 });
const PORTS = { c1: 5681, c2: 5682, c3: 5683 } as const;
const url = (n: keyof typeof PORTS) => `amqp://guest:guest@127.0.0.1:${PORTS[n]}`;
const URLS = [url("c1"), url("c2"), url("c3")];
const KILL_AFTER_MS = 2000;
/** How long after the kill a client may take to confirm or deliver again before it counts as not recovered. */
const WINDOW_MS = 20_000;
const PUBLISH_EVERY_MS = 5;

/** What a client adapter must do: publish with a confirm, consume with acks, close. */
interface Side {
  publish(id: string): Promise<void>;
  consume(onMessage: (id: string) => void): Promise<void>;
  close(): Promise<void>;
}

const CLIENTS: Record<string, (queue: string) => Promise<Side>> = {
  async warren(queue) {
    const options = { url: URLS, recovery: { initialDelay: 100, maxDelay: 1000, waitTimeout: WINDOW_MS } };
    const [pubConn, subConn] = await Promise.all([connect(options), connect(options)]);
    const pub = await pubConn.openChannel();
    await pub.confirmSelect();
    const sub = await subConn.openChannel();
    await sub.prefetch(50);
    return {
      publish: (id) => pub.publish("", queue, id, { messageId: id, deliveryMode: 2 }),
      consume: async (onMessage) => {
        await sub.consume(queue, (m) => {
          onMessage(m.properties.messageId!);
          sub.ack(m);
        });
      },
      close: async () => void (await Promise.allSettled([pubConn.close(), subConn.close()])),
    };
  },
  async "rabbitmq-client"(queue) {
    const conn = new RabbitClient({
      hosts: URLS.map((u) => new URL(u).host),
      username: "guest",
      password: "guest",
      retryLow: 100,
      retryHigh: 1000,
      connectionTimeout: 5000,
    });
    conn.on("error", () => undefined); // it reports each lost socket here, and reconnects by itself
    const publisher = conn.createPublisher({ confirm: true, maxAttempts: 1 });
    let consumer: { close(): Promise<void> } | undefined;
    return {
      publish: (id) => publisher.send({ routingKey: queue, messageId: id, durable: true }, id),
      consume: async (onMessage) => {
        consumer = conn.createConsumer(
          { queue, queueOptions: { passive: true }, qos: { prefetchCount: 50 } },
          async (msg) => onMessage(msg.messageId!),
        );
      },
      close: async () => {
        await Promise.allSettled([publisher.close(), consumer?.close()]);
        await conn.close();
      },
    };
  },
  async cloudamqp(queue) {
    const options = { reconnectInterval: 100, maxReconnectInterval: 1000, logger: null };
    const [pubSession, subSession] = await Promise.all([
      AMQPSession.connect(url("c1"), options),
      AMQPSession.connect(url("c1"), options),
    ]);
    const pubQueue = await pubSession.queue(queue, { passive: true });
    const subQueue = await subSession.queue(queue, { passive: true });
    return {
      publish: async (id) => void (await pubQueue.publish(id, { messageId: id })),
      consume: async (onMessage) => {
        await subQueue.subscribe({ prefetch: 50 }, (msg) => onMessage(msg.properties.messageId!));
      },
      close: async () => void (await Promise.allSettled([pubSession.stop(), subSession.stop()])),
    };
  },
};

interface Result {
  client: string;
  recovered: boolean;
  firstConfirmMs: number | undefined;
  firstDeliveryMs: number | undefined;
  confirmed: number;
  failed: number;
  lost: number;
  duplicates: number;
}

async function declareQueue(): Promise<string> {
  const queue = `failover-${process.pid}-${Date.now()}`;
  const conn = await connect(url("c2"));
  const ch = await conn.openChannel();
  await ch.queueDeclare(queue, {
    durable: true,
    queueType: "quorum",
    arguments: { "x-queue-leader-locator": "client-local", "x-consumer-disconnected-timeout": 1000 },
  });
  await conn.close();
  return queue;
}

async function leftIn(queue: string): Promise<string[]> {
  const conn = await connect(url("c2"));
  const ch = await conn.openChannel();
  const ids: string[] = [];
  for (let m = await ch.get(queue, { noAck: true }); m !== null; m = await ch.get(queue, { noAck: true }))
    ids.push(m.properties.messageId!);
  await ch.queueDelete(queue);
  await conn.close();
  return ids;
}

async function measure(client: string): Promise<Result> {
  await sh("cluster-start");
  const queue = await declareQueue();
  const side = await CLIENTS[client]!(queue);
  const confirmedAt = new Map<string, number>();
  const failed = new Set<string>();
  const deliveries = new Map<string, number>();
  // Only messages published after the kill count for "first after": a confirm or a delivery of
  // one sent before could still be on its way when the node died.
  const sentAfterKill = new Set<string>();
  let firstDelivery: number | undefined;
  await side.consume((id) => {
    deliveries.set(id, (deliveries.get(id) ?? 0) + 1);
    if (firstDelivery === undefined && sentAfterKill.has(id)) firstDelivery = Date.now();
  });
  const c1 = Number((await sh("pid", "c1")).stdout.trim());
  const started = Date.now();
  let killAt = 0;
  let n = 0;
  const inFlight: Promise<void>[] = [];
  let firstConfirm: number | undefined;
  while (Date.now() - started < KILL_AFTER_MS + WINDOW_MS) {
    if (killAt === 0 && Date.now() - started >= KILL_AFTER_MS) {
      killAt = Date.now();
      process.kill(c1, "SIGKILL");
    }
    const id = `m${n++}`;
    if (killAt !== 0) sentAfterKill.add(id);
    inFlight.push(
      side.publish(id).then(
        () => {
          const t = Date.now();
          confirmedAt.set(id, t);
          if (firstConfirm === undefined && sentAfterKill.has(id)) firstConfirm = t;
        },
        () => void failed.add(id),
      ),
    );
    await new Promise((r) => setTimeout(r, PUBLISH_EVERY_MS));
    if (
      firstConfirm !== undefined &&
      firstDelivery !== undefined &&
      Date.now() - Math.max(firstConfirm, firstDelivery) > 2000
    )
      break;
  }
  await Promise.race([Promise.allSettled(inFlight), new Promise((r) => setTimeout(r, 10_000))]);
  await new Promise((r) => setTimeout(r, 2000)); // let the consumer catch up
  await side.close().catch(() => undefined);
  await sh("cluster-start"); // c1 back, so the queue can be read whatever the client did
  const left = new Set(await leftIn(queue));
  const lost = [...confirmedAt.keys()].filter((id) => !deliveries.has(id) && !left.has(id)).length;
  const duplicates = [...deliveries.values()].filter((c) => c > 1).length;
  return {
    client,
    recovered: firstConfirm !== undefined && firstDelivery !== undefined,
    firstConfirmMs: firstConfirm === undefined ? undefined : firstConfirm - killAt,
    firstDeliveryMs: firstDelivery === undefined ? undefined : firstDelivery - killAt,
    confirmed: confirmedAt.size,
    failed: failed.size,
    lost,
    duplicates,
  };
}

// A peer's stray rejection must not end the run: it is that client's failure to recover, which
// the figures show.
process.on("unhandledRejection", () => undefined);

const ROUNDS = Number(process.env["FAILOVER_ROUNDS"] ?? 3);
const results: Result[] = [];
// Rounds interleave the clients, so that a slow moment of the machine does not fall on one client.
for (let round = 1; round <= ROUNDS; round++) {
  for (const client of Object.keys(CLIENTS)) {
    process.stderr.write(`[failover] round ${round}: ${client}...\n`);
    results.push(await measure(client));
    process.stderr.write(`[failover] ${JSON.stringify(results.at(-1))}\n`);
  }
}
const median = (xs: (number | undefined)[]): number | undefined => {
  if (xs.some((x) => x === undefined)) return undefined; // a round without recovery
  const s = (xs as number[]).slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const summary = Object.keys(CLIENTS).map((client) => {
  const rs = results.filter((r) => r.client === client);
  const sum = (k: "confirmed" | "failed" | "lost" | "duplicates") => rs.reduce((n, r) => n + r[k], 0);
  return {
    client,
    firstConfirmMs: median(rs.map((r) => r.firstConfirmMs)),
    firstDeliveryMs: median(rs.map((r) => r.firstDeliveryMs)),
    confirmed: sum("confirmed"),
    failed: sum("failed"),
    lost: sum("lost"),
    duplicates: sum("duplicates"),
  };
});
const ms = (v: number | undefined) => (v === undefined ? `none within ${WINDOW_MS / 1000} s` : `${v} ms`);
const lines = [
  `# Failover: kill the node a client is connected to (RabbitMQ 4.3, three nodes, ${new Date().toISOString().slice(0, 10)})`,
  "",
  '`npm run bench:failover`. A publisher in confirm mode (one message every 5 ms) and a manual-ack consumer, both on c1, on a quorum queue led from c2; c1 SIGKILLed 2 s in. "First after the kill": from the SIGKILL of the node\'s VM to the first confirm, and the first delivery, of a message published after it.',
  "",
  `Median of ${ROUNDS} rounds for the times; counts summed over the rounds.`,
  "",
  "| client | first confirm after the kill | first delivery after the kill | confirmed | failed | confirmed but lost | delivered twice |",
  "|---|---|---|---|---|---|---|",
  ...summary.map(
    (r) =>
      `| ${r.client} | ${ms(r.firstConfirmMs)} | ${ms(r.firstDeliveryMs)} | ${r.confirmed} | ${r.failed} | ${r.lost} | ${r.duplicates} |`,
  ),
  "| amqplib | no recovery of its own | no recovery of its own | | | | |",
  "",
  '"Delivered twice" counts ids the consumer got more than once: the window it held unacked at the kill comes back redelivered (at-least-once), which is expected; "confirmed but lost" must be 0.',
  "",
];
writeFileSync(`${ROOT}bench/results/failover.md`, lines.join("\n"));
writeFileSync(`${ROOT}bench/results/failover.json`, JSON.stringify({ rounds: results, summary }, null, 2) + "\n");
process.stdout.write(lines.join("\n"));
process.exit(0);
