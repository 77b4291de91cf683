/**
 * The soak: a publisher and three consumers on a three-node RabbitMQ 4.3 cluster whose nodes live
 * in network namespaces of their own (scripts/rabbitmq43.sh netns-cluster-start), run for a while
 * under a seeded schedule of faults (faults.ts); every operation goes into a history, and the
 * checker (check.ts) reads it afterwards. One line of figures; the exit code says pass or fail.
 *
 *   npm run soak -- [--seconds 90] [--seed N] [--rate 200] [--faults kill,close,...] [--history FILE]
 *   npm run soak -- --check FILE        check a history file again
 *
 * The clients: a publisher in confirm mode with automatic recovery (republishUnconfirmed) and a
 * confirmTimeout, its publishes to a fanout exchange bound to two quorum queues and a stream; a
 * callback consumer (settle "auto", resubscribe) on the first quorum queue, an iterator on the
 * second (consumed again in a new loop if it ends), a stream consumer from offset "first"
 * (resubscribe). Both connections go through a TCP proxy per node (the network lane's faults)
 * and list all three nodes, in different orders. Needs root (namespaces, the sid root's chroot).
 */
import { mkdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { connect, NackError, type Channel, type Connection, type Message } from "../src/index.js";
import { startProxy, type Proxy } from "../test/helpers/proxy.js";
import { check, summary } from "./check.js";
import { cluster, FAULT_KINDS, NODES, restoreAll, runFaults, type NodeName } from "./faults.js";
import { History, parseHistory, type ConsumerName, type FaultKind } from "./history.js";
import { seeded } from "./random.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "90" },
    seed: { type: "string" },
    rate: { type: "string", default: "200" },
    faults: { type: "string", default: FAULT_KINDS.join(",") },
    history: { type: "string" },
    check: { type: "string" },
    drain: { type: "string", default: "120" },
  },
});

const HEARTBEAT_S = 5;
/** Under the checker's stall limit (30 s with no fault active), over a quorum queue's failover. */
const CONFIRM_TIMEOUT_MS = 15_000;
const RECOVERY = { initialDelay: 100, maxDelay: 2000, waitTimeout: 60_000, republishUnconfirmed: true } as const;
const RESUBSCRIBE = { initialDelay: 100, maxDelay: 2000 } as const;

if (args.check !== undefined) {
  const report = check(parseHistory(readFileSync(args.check, "utf8")));
  console.log(summary(report));
  process.exit(report.failures.length === 0 ? 0 : 1);
}

const seconds = Number(args.seconds);
const seed = args.seed !== undefined ? Number(args.seed) : Math.floor(Math.random() * 2 ** 31);
const rate = Number(args.rate);
const kinds = new Set(args.faults.split(",").filter(Boolean) as FaultKind[]);
for (const kind of kinds)
  if (!FAULT_KINDS.includes(kind)) throw new Error(`unknown fault kind ${kind} (${FAULT_KINDS.join(", ")})`);
if (!(seconds > 0 && rate > 0 && Number.isInteger(seed)))
  throw new Error("--seconds and --rate must be positive, --seed an integer");
const historyPath = args.history ?? `soak/history/${seed}.jsonl`;
mkdirSync(new URL("../soak/history/", import.meta.url), { recursive: true });
console.log(`soak: seed ${seed}, ${seconds} s at ${rate}/s, faults ${[...kinds].join(",")}; history ${historyPath}`);
console.log(
  `      to replay: npm run soak -- --seconds ${seconds} --seed ${seed} --rate ${rate} --faults ${[...kinds].join(",")}`,
);

const history = new History(historyPath);
// The clients' stray failures, recorded for the checker while they run (removed before the check:
// a failure of the soak itself must not be swallowed into a history nobody reads any more).
const unhandled = (err: unknown) => history.record({ k: "unhandled", error: String(err) });
process.on("unhandledRejection", unhandled);
process.on("uncaughtException", unhandled);

const name = `soak-${seed}-${Date.now().toString(36)}`;
const queues = { callback: `${name}-callback`, iterator: `${name}-iterator`, stream: `${name}-stream` } as const;
const address = async (node: NodeName) => ({ host: (await cluster("address", node)).trim(), port: 5672 });
const direct = async (node: NodeName) => `amqp://guest:guest@${(await address(node)).host}:5672`;

/** Resolves with `promise`, or records a hang and resolves undefined after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      history.record({ k: "hang", what: `${what} (${ms} ms)` });
      resolve(undefined);
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function memory(when: "start" | "end") {
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  history.record({ k: "memory", when, rss, heapUsed });
}

function watch(conn: Connection, who: string) {
  for (const what of [
    "disconnect",
    "reconnected",
    "recoveryError",
    "recoveryFailed",
    "blocked",
    "unblocked",
    "queueRenamed",
  ] as const) {
    conn.on(what, (...info: unknown[]) =>
      history.record({
        k: "client",
        who,
        what,
        detail: info.map((i) => (i instanceof Error ? i.message : JSON.stringify(i))).join(" "),
      }),
    );
  }
}

function delivered(c: ConsumerName, msg: Message) {
  const id = msg.properties.messageId ?? "";
  const offset = msg.properties.headers?.["x-stream-offset"];
  history.record({
    k: "delivered",
    c,
    id,
    redelivered: msg.fields.redelivered,
    ...(offset !== undefined ? { offset: Number(offset) } : {}),
  });
}

const proxies: Partial<Record<NodeName, Proxy>> = {};
let failedToRun: unknown;
const stopping = new AbortController();
try {
  await cluster("netns-cluster-start");
  for (const node of NODES) proxies[node] = await startProxy({ target: await address(node) });
  const through = (order: NodeName[]) =>
    order.map((n) => proxies[n]!.url(`amqp://guest:guest@${proxies[n]!.host}:${proxies[n]!.port}`));

  const admin = await connect(await direct("n1"));
  const ach = await admin.openChannel();
  await ach.exchangeDeclare(name, "fanout", { durable: true });
  // Quorum queues without a delivery limit: a message requeued by every forced close counts as
  // failed on 4.3, and must not be dropped for it here.
  for (const q of [queues.callback, queues.iterator]) {
    await ach.queueDeclare(q, { durable: true, queueType: "quorum", deliveryLimit: -1 });
  }
  await ach.queueDeclare(queues.stream, { durable: true, queueType: "stream" });
  for (const q of Object.values(queues)) await ach.queueBind(q, name);
  await admin.close();

  const pub = await connect({
    url: through(["n1", "n2", "n3"]),
    connectionName: "soak-publisher",
    heartbeat: HEARTBEAT_S,
    recovery: RECOVERY,
    // RabbitMQ 4.3 stops confirming on a node cut off from the quorum queues' majority, even
    // after the heal, until the connection closes: the publisher reconnects (elsewhere first).
    confirmTimeout: CONFIRM_TIMEOUT_MS,
  });
  const cons = await connect({
    url: through(["n2", "n3", "n1"]),
    connectionName: "soak-consumers",
    heartbeat: HEARTBEAT_S,
    recovery: RECOVERY,
  });
  watch(pub, "publisher");
  watch(cons, "consumers");

  // The callback consumer.
  const cch = await cons.openChannel();
  const callback = await cch.consume(
    queues.callback,
    async (msg) => {
      delivered("callback", msg);
      await new Promise((resolve) => setImmediate(resolve));
      history.record({ k: "acked", c: "callback", id: msg.properties.messageId ?? "" });
    },
    { settle: "auto", concurrency: 4, resubscribe: RESUBSCRIBE },
  );
  // The stream consumer, from the stream's first offset.
  const sch = await cons.openChannel();
  await sch.prefetch(200);
  const stream = await sch.consume(
    queues.stream,
    (msg) => {
      delivered("stream", msg);
      history.record({ k: "acked", c: "stream", id: msg.properties.messageId ?? "" });
    },
    { settle: "auto", arguments: { "x-stream-offset": "first" }, resubscribe: RESUBSCRIBE },
  );
  for (const [who, consumer] of [
    ["callback", callback],
    ["stream", stream],
  ] as const) {
    for (const what of ["cancelled", "resubscribed", "resubscribeFailed"] as const) {
      consumer.on(what, (info: unknown) =>
        history.record({
          k: "client",
          who,
          what,
          detail: info instanceof Error ? info.message : JSON.stringify({ ...(info as object), channel: undefined }),
        }),
      );
    }
  }
  // The iterator: a for-await loop, started again on a new channel if it ends.
  let consuming = true;
  const iterator = (async () => {
    let ich: Channel | undefined;
    while (consuming) {
      try {
        if (ich === undefined || ich.closed) {
          ich = await cons.openChannel();
          await ich.prefetch(100);
        }
        for await (const msg of ich.consume(queues.iterator)) {
          delivered("iterator", msg);
          const refused = msg.ack();
          if (refused !== undefined)
            history.record({ k: "client", who: "iterator", what: "ack refused", detail: refused.message });
          else history.record({ k: "acked", c: "iterator", id: msg.properties.messageId ?? "" });
        }
        history.record({ k: "client", who: "iterator", what: "loop ended" });
      } catch (err) {
        history.record({ k: "client", who: "iterator", what: "loop threw", detail: String(err) });
      }
      if (consuming) await sleep(500);
    }
  })();

  memory("start");

  // The publisher: `rate` per second, in ticks of 10 ms, each publish's promise recorded.
  const pch = await pub.openChannel();
  await pch.confirmSelect({ maxUnconfirmed: 1000 });
  const inflight = new Set<Promise<void>>();
  let publishing = true;
  const publisher = (async () => {
    let n = 0;
    let due = 0;
    const started = performance.now();
    while (publishing) {
      due = ((performance.now() - started) * rate) / 1000;
      for (; n < due && publishing; n++) {
        const id = `m${n}`;
        history.record({ k: "sent", id });
        const p = pch.publish(name, "", `${id} ${"x".repeat(100)}`, { messageId: id, deliveryMode: 2 }).then(
          () => history.record({ k: "confirmed", id }),
          (err: unknown) =>
            history.record(
              err instanceof NackError
                ? { k: "nacked", id }
                : { k: "rejected", id, error: `${(err as Error).name}: ${(err as Error).message}` },
            ),
        );
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      await sleep(10);
    }
  })();

  const faults = runFaults(
    {
      history,
      random: seeded(seed),
      proxies: proxies as Record<NodeName, Proxy>,
      heartbeatMs: HEARTBEAT_S * 1000,
      kinds,
    },
    stopping.signal,
  );
  await sleep(seconds * 1000);
  stopping.abort();
  // Publishing ends on time; the faults in progress are undone meanwhile (a partition's heal
  // waits for the cluster to be whole again, which on a loaded machine takes a while).
  publishing = false;
  await publisher;
  await within(faults, 300_000, "undoing the faults in progress");
  history.record({ k: "stopped" });
  await within(Promise.all(inflight), 120_000, `${inflight.size} publishes settling`);

  // The drain: until each consumer has had every confirmed id, or the drain's time is up.
  const confirmed = new Set<string>();
  const got: Record<ConsumerName, Set<string>> = { callback: new Set(), iterator: new Set(), stream: new Set() };
  const drainUntil = performance.now() + Number(args.drain) * 1000;
  let complete = false;
  while (!complete && performance.now() < drainUntil) {
    await sleep(250);
    for (const e of history.events) {
      if (e.k === "confirmed") confirmed.add(e.id);
      else if (e.k === "delivered") got[e.c].add(e.id);
    }
    complete = [...confirmed].every((id) => got.callback.has(id) && got.iterator.has(id) && got.stream.has(id));
  }
  history.record({ k: "drained", complete });
  memory("end");

  consuming = false;
  await within(Promise.all([pub.close(), cons.close()]), 60_000, "closing the connections");
  await within(iterator, 30_000, "the iterator's loop ending after its connection closed");
} catch (err) {
  failedToRun = err;
} finally {
  stopping.abort();
  await restoreAll(proxies).catch((err: unknown) => {
    failedToRun ??= err;
  });
  try {
    const admin = await connect(await direct("n1"));
    const ach = await admin.openChannel();
    for (const q of Object.values(queues)) await ach.queueDelete(q).catch(() => undefined);
    await ach.exchangeDelete(name).catch(() => undefined);
    await admin.close();
  } catch {
    // Nothing declared yet, or the cluster is gone: nothing to clean.
  }
  for (const proxy of Object.values(proxies)) await proxy.close();
  await history.close();
}

process.off("unhandledRejection", unhandled);
process.off("uncaughtException", unhandled);
if (failedToRun !== undefined) {
  console.error("soak: could not run:", failedToRun);
  process.exit(2);
}
const report = check(history.events);
console.log(summary(report));
process.exit(report.failures.length === 0 ? 0 : 1);
