/**
 * amqplib is the oracle: one script of operations, run once with amqplib and once with
 * warren/amqplib against the same broker, and what each observed (replies, events in order,
 * errors' names, texts and fields, messages) compared. Names the broker makes (server-named
 * queues, consumer tags) are replaced by their order of appearance; where warren/amqplib
 * differs on purpose (src/amqplib/README.md), the script does not go.
 */
import * as amqplib from "amqplib";
import { describe, expect, test } from "vitest";
import * as warren from "../../src/amqplib/index.js";
import { brokerAddress, getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { startProxy } from "../helpers/proxy.js";
import { forceCloseConnection } from "../helpers/force-close.js";
import { countReaching, attempt, err, message, tick, until, watch, type Lib, type Log } from "./oracle.js";

/** The script: what one program does with the library it is given. */
async function script(lib: Lib, url: string, names: { x: string; q: string; missing: string }): Promise<Log> {
  const log: Log = [];
  const model = await lib.connect(url);
  watch(log, "model", model, ["error", "close", "blocked", "unblocked"]);
  const ch = await model.createChannel();
  watch(log, "ch", ch, ["error", "close", "return", "cancel"]);

  await attempt(log, "assertExchange", () => ch.assertExchange(names.x, "topic", { durable: false, autoDelete: true }));
  await attempt(log, "assertQueue", () =>
    ch.assertQueue(names.q, { exclusive: true, messageTtl: 60_000, maxLength: 100, deadLetterExchange: "" }),
  );
  await attempt(log, "assertQueue again", () =>
    ch.assertQueue(names.q, { exclusive: true, messageTtl: 60_000, maxLength: 100, deadLetterExchange: "" }),
  );
  await attempt(log, "bindQueue", () => ch.bindQueue(names.q, names.x, "a.*"));
  const props: amqplib.Options.Publish = {
    contentType: "text/plain",
    contentEncoding: "utf-8",
    headers: { k: "v", n: 7 },
    persistent: true,
    priority: 3,
    correlationId: "c-1",
    replyTo: "r",
    expiration: 60_000,
    messageId: "m-1",
    timestamp: 1_700_000_000,
    type: "t",
    appId: "a",
    CC: "a.cc",
  };
  log.push(["publish", ch.publish(names.x, "a.b", Buffer.from("one"), props)]);
  log.push(["publish", ch.publish(names.x, "a.c", Buffer.from("two"))]);
  log.push(["sendToQueue", ch.sendToQueue(names.q, Buffer.from("three"), { deliveryMode: true })]);
  log.push(["publish unroutable", ch.publish(names.x, "b.z", Buffer.from("nowhere"), { mandatory: true })]);
  await tick(200);

  const first = await attempt(log, "get", async () => message(await ch.get(names.q)));
  void first;
  const got = await ch.get(names.q);
  log.push(["get", message(got)]);
  if (got) ch.nack(got, false, true);
  const again = await ch.get(names.q);
  log.push(["get after nack", message(again)]);
  if (again) ch.reject(again, false);
  await attempt(log, "checkQueue", () => ch.checkQueue(names.q));

  // A consumer: what arrives, then ackAll, cancel.
  const seen: unknown[] = [];
  const consumed = await attempt(log, "consume", () =>
    ch.consume(names.q, (m) => void seen.push(message(m)), { consumerTag: "ctag-1" }),
  );
  await until(() => seen.length >= 1);
  log.push(["consumer saw", seen.splice(0)]);
  ch.ackAll();
  await attempt(log, "cancel", () => ch.cancel(consumed?.consumerTag ?? ""));
  await attempt(log, "prefetch", () => ch.prefetch(10));
  await attempt(log, "recover", () => ch.recover());
  await attempt(log, "purgeQueue", () => ch.purgeQueue(names.q));

  // A refusal: the channel closes; events, then what a closed channel does.
  await attempt(log, "checkQueue missing", () => ch.checkQueue(names.missing));
  await tick();
  await attempt(log, "assertQueue on the closed channel", () => ch.assertQueue(""));
  await attempt(log, "publish on the closed channel", () => ch.publish(names.x, "a.b", Buffer.from("x")));
  await attempt(log, "ack on the closed channel", () => ch.ackAll());
  await attempt(log, "close the closed channel", () => ch.close());

  // An inequivalent declaration: 406, the operation named.
  const ch2 = await model.createChannel();
  watch(log, "ch2", ch2, ["error", "close"]);
  await attempt(log, "assertQueue inequivalent", () => ch2.assertQueue(names.q, { exclusive: true, messageTtl: 5 }));
  await tick();

  // Confirms: callbacks, waitForConfirms, a mandatory publish returned.
  const cc = await model.createConfirmChannel();
  watch(log, "cc", cc, ["error", "close", "return"]);
  const confirmed: unknown[] = [];
  for (let i = 0; i < 5; i++)
    cc.sendToQueue(names.q, Buffer.from(`c${i}`), {}, (e) => confirmed.push([i, e === null ? null : err(e)]));
  cc.publish(names.x, "nowhere", Buffer.from("returned"), { mandatory: true }, (e) =>
    confirmed.push(["mandatory", e === null ? null : err(e)]),
  );
  await attempt(log, "waitForConfirms", () => cc.waitForConfirms());
  // Sorted: RabbitMQ may ack the unroutable publish before the routed ones (no queue to wait for).
  log.push(["confirm callbacks", confirmed.map((c) => JSON.stringify(c)).sort()]);

  // The broker cancels a consumer (its queue deleted): the callback gets null.
  const { queue: doomed } = await cc.assertQueue("", { exclusive: true });
  const cancels: unknown[] = [];
  await cc.consume(doomed, (m) => void cancels.push(message(m)));
  const other = await model.createChannel();
  await other.deleteQueue(doomed);
  await until(() => cancels.length >= 1);
  log.push(["server cancel", cancels]);

  await attempt(log, "deleteQueue", () => other.deleteQueue(names.q));
  await attempt(log, "deleteExchange", () => other.deleteExchange(names.x));
  await attempt(log, "close", () => model.close());
  await attempt(log, "createChannel after close", () => model.createChannel());
  await tick();
  return log;
}

/** Broker-made names in order of appearance, so two runs compare. */
function normalize(log: Log, names: { x: string; q: string; missing: string }): unknown {
  const seen = new Map<string, string>();
  const text = JSON.stringify(log, (_k, v: unknown) => (v === undefined ? "<undefined>" : v))
    .replaceAll(names.x, "<x>")
    .replaceAll(names.q, "<q>")
    .replaceAll(names.missing, "<missing>")
    .replace(/amq\.(gen|ctag)-[\w-]+/g, (m) => {
      if (!seen.has(m)) seen.set(m, `<${m.split("-")[0]}-${seen.size}>`);
      return seen.get(m)!;
    });
  return JSON.parse(text);
}

describe("warren/amqplib against amqplib, the same script on the same broker", () => {
  test("replies, events, errors and messages are amqplib's", async () => {
    const url = await getBrokerUrl();
    const runs = [];
    for (const [label, lib] of [
      ["amqplib", amqplib],
      ["warren", warren],
    ] as const) {
      const names = {
        x: uniqueName(`amqplib-diff-x-${label}`),
        q: uniqueName(`amqplib-diff-q-${label}`),
        missing: uniqueName(`amqplib-diff-missing-${label}`),
      };
      runs.push(normalize(await script(lib as Lib, url, names), names));
    }
    const [expected, actual] = runs as [unknown[], unknown[]];
    expect(expected.length).toBeGreaterThan(35); // the script ran to its end
    for (let i = 0; i < Math.max(expected.length, actual.length); i++)
      expect(actual[i], `step ${i}`).toEqual(expected[i]);
  }, 60_000);
});

describe("connect's errors are amqplib's", () => {
  test("a refused login, a port nobody listens on", async () => {
    const good = new URL(await getBrokerUrl());
    const wrongPassword = new URL(good);
    wrongPassword.password = "not-the-password";
    const nobody = new URL(good);
    nobody.port = "1";
    const outcomes = async (lib: Lib) => {
      const log: Log = [];
      for (const url of [wrongPassword.toString(), nobody.toString()]) {
        await attempt(log, "connect", async () => {
          const m = await lib.connect(url);
          await m.close();
          return "connected";
        });
      }
      return (log as [string, string, { message?: string; code?: unknown }][]).map(([, outcome, e]) => {
        // What code matches on: the reply code and its name, or the socket's error code.
        return [outcome, e.code, /ACCESS-REFUSED|ECONNREFUSED/.exec(e.message ?? "")?.[0], e.message?.split(":")[0]];
      });
    };
    const expected = await outcomes(amqplib);
    expect(expected.map((e) => e[0])).toEqual(["error", "error"]);
    expect(await outcomes(warren as unknown as Lib)).toEqual(expected);
  });
});

describe("connect(url, { recovery }) is amqplib's", () => {
  test("a connection the broker closes is opened again, setup runs on each, and the events are amqplib's", async () => {
    const url = await getBrokerUrl();
    const run = async (lib: Lib, label: string) => {
      const name = uniqueName(`amqplib-recovery-${label}`);
      const queue = uniqueName(`amqplib-recovery-q-${label}`);
      const log: Log = [];
      let setups = 0;
      const model = await lib.connect(url, {
        clientProperties: { connection_name: name },
        recovery: {
          initialDelay: 20,
          jitter: 0,
          setup: async (m: amqplib.ChannelModel) => {
            setups++;
            const ch = await m.createChannel();
            await ch.assertQueue(queue, { exclusive: true });
          },
        },
      });
      for (const event of ["connect", "disconnect", "connect-failed", "reconnect-scheduled", "reconnect-failed"])
        model.on(event, (arg: unknown) =>
          log.push([
            event,
            arg instanceof Error
              ? err(arg).message
              : arg && typeof arg === "object" && "attempt" in arg
                ? { ...(arg as object), error: err((arg as unknown as { error: unknown }).error).message }
                : typeof arg,
          ]),
        );
      log.push(["setups", setups]);
      await forceCloseConnection(name);
      await until(() => log.some((l) => (l as unknown[])[0] === "connect"));
      log.push(["setups", setups]);
      const ch = await model.createChannel();
      log.push(["a channel on the new connection", await ch.checkQueue(queue).then((r) => ({ ...r, queue: "<q>" }))]);
      await model.close();
      await tick();
      log.push([
        "after close",
        await model.createChannel().then(
          () => "channel",
          (e: unknown) => err(e).message,
        ),
      ]);
      return log;
    };
    const expected = await run(amqplib, "a");
    expect(expected.length).toBeGreaterThan(4);
    expect(await run(warren as unknown as Lib, "w")).toEqual(expected);
  }, 30_000);
});

describe("publish's boolean and 'drain' are amqplib's", () => {
  test("a broker that stops reading: publish turns false, 'drain' comes once it reads again, and every message arrives", async () => {
    const url = await getBrokerUrl();
    const run = async (lib: Lib) => {
      const proxy = await startProxy({ target: brokerAddress(url) });
      const log: Log = [];
      try {
        const model = await lib.connect(proxy.url(url));
        const ch = await model.createChannel();
        const { queue } = await ch.assertQueue("", { exclusive: true });
        const body = Buffer.alloc(64 * 1024, 1);
        proxy.pauseReading("up");
        let sent = 0;
        while (ch.sendToQueue(queue, body, { messageId: String(sent) })) if (++sent > 10_000) break;
        sent++; // the one that returned false was taken too
        log.push(["turned false within 10000", sent <= 10_000]);
        let drains = 0;
        ch.on("drain", () => drains++);
        await tick(100);
        log.push(["drain while the broker reads nothing", drains]);
        proxy.resumeReading("up");
        await until(() => drains > 0, 10_000);
        log.push(["drain once it reads again", drains]);
        const check = await model.createChannel();
        log.push(["every message in the queue", (await countReaching(check, queue, sent)) === sent]);
        await model.close();
      } finally {
        await proxy.close();
      }
      return log;
    };
    const expected = await run(amqplib);
    expect(expected).toEqual([
      ["turned false within 10000", true],
      ["drain while the broker reads nothing", 0],
      ["drain once it reads again", 1],
      ["every message in the queue", true],
    ]);
    expect(await run(warren as unknown as Lib)).toEqual(expected);
  }, 60_000);
});

describe("amqplib's plumbing events: 'delivery' and 'handler-error'", () => {
  test("each delivery is a 'delivery' event after its consumer has it; a listener that throws is a 'handler-error'", async () => {
    const url = await getBrokerUrl();
    const run = async (lib: Lib) => {
      const log: Log = [];
      const model = await lib.connect(url);
      const ch = await model.createChannel();
      ch.on("handler-error", (e: Error, event: string) => log.push(["handler-error", e.message, event]));
      ch.on("delivery", (m: amqplib.ConsumeMessage) => log.push(["delivery event", m.content.toString()]));
      ch.on("return", () => {
        throw new Error("a listener's bug");
      });
      const { queue } = await ch.assertQueue("", { exclusive: true });
      await ch.consume(queue, (m) => log.push(["consumer", m?.content.toString()]), { noAck: true });
      ch.sendToQueue(queue, Buffer.from("one"));
      // One after the other: the broker may hand back an unroutable message before it delivers a routed one.
      await until(() => log.length >= 2);
      ch.publish("", uniqueName("nowhere"), Buffer.from("returned"), { mandatory: true });
      await until(() => log.length >= 3);
      await tick(100);
      await model.close();
      return log;
    };
    const expected = await run(amqplib);
    expect(expected).toEqual([
      ["consumer", "one"],
      ["delivery event", "one"],
      ["handler-error", "a listener's bug", "return"],
    ]);
    expect(await run(warren as unknown as Lib)).toEqual(expected);
  });
});

describe("a confirm channel's 'ack' events are amqplib's", () => {
  test("after the callbacks of the publishes they settle, naming the last publish settled", async () => {
    const url = await getBrokerUrl();
    const run = async (lib: Lib) => {
      const model = await lib.connect(url);
      const cc = await model.createConfirmChannel();
      const events: string[] = [];
      let last = 0;
      cc.on("ack", (f: { deliveryTag: number; multiple: boolean }) => {
        events.push("ack event");
        last = Math.max(last, f.deliveryTag);
      });
      const { queue } = await cc.assertQueue("", { exclusive: true });
      for (let i = 1; i <= 5; i++)
        cc.sendToQueue(queue, Buffer.from(String(i)), {}, () => events.push(`callback ${i}`));
      await cc.waitForConfirms();
      await until(() => last === 5);
      await model.close();
      // Broker timing decides how many acks cover the five: what stays is the order and the last tag.
      const firstAck = events.indexOf("ack event");
      return {
        last,
        callbacks: events.filter((e) => e.startsWith("callback")),
        callbackBeforeFirstAck: firstAck > 0 && events[firstAck - 1]!.startsWith("callback"),
      };
    };
    const expected = await run(amqplib);
    expect(expected).toEqual({
      last: 5,
      callbacks: ["callback 1", "callback 2", "callback 3", "callback 4", "callback 5"],
      callbackBeforeFirstAck: true,
    });
    expect(await run(warren as unknown as Lib)).toEqual(expected);
  });
});
