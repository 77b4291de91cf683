/**
 * The callback API (warren/amqplib/callback_api) against amqplib/callback_api: the same program,
 * written in callbacks as the official tutorials' JavaScript is, run with each, and what each
 * observed compared.
 */
import * as amqplib from "amqplib/callback_api";
import { expect, test } from "vitest";
import * as warren from "../../src/amqplib/callback_api.js";
import { getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { forceCloseConnection } from "../helpers/force-close.js";

type Lib = Pick<typeof amqplib, "connect">;

function err(e: unknown) {
  if (e === null || e === undefined) return e;
  const x = e as Error & { code?: unknown };
  return { name: x.name, message: x.message, code: x.code };
}

/** A tutorial-shaped program: declare, publish, consume, get, confirm, a refusal; every callback logged. */
function program(lib: Lib, url: string, queue: string): Promise<unknown[]> {
  const log: unknown[] = [];
  return new Promise((done, fail) => {
    lib.connect(url, (e0: unknown, conn: amqplib.Connection) => {
      if (e0) return fail(e0);
      conn.on("close", (e: unknown) => {
        log.push(["conn close", err(e)]);
        done(log);
      });
      const returned = conn.createChannel((e1: unknown, ch: amqplib.Channel) => {
        log.push(["createChannel", err(e1), ch === returned]);
        ch.on("error", (e: unknown) => log.push(["ch error", err(e)]));
        ch.on("close", () => log.push(["ch close"]));
        ch.assertQueue(queue, { durable: false, exclusive: true }, (e2: unknown, ok: unknown) => {
          log.push(["assertQueue", err(e2), ok]);
          log.push(["sendToQueue", ch.sendToQueue(queue, Buffer.from("hello"), { contentType: "text/plain" })]);
          ch.get(queue, { noAck: false }, (e3: unknown, m: amqplib.Message | false) => {
            log.push([
              "get",
              err(e3),
              m && { content: m.content.toString(), fields: m.fields, properties: m.properties },
            ]);
            if (m) ch.ack(m);
            ch.sendToQueue(queue, Buffer.from("world"));
            ch.consume(
              queue,
              (msg: amqplib.ConsumeMessage | null) => {
                if (msg) ch.ack(msg);
                // The rest once, after the first; "c" races the confirm on the other channel.
                if (msg?.content.toString() !== "world") return;
                log.push(["consumed", msg.content.toString(), msg.fields.redelivered]);
                conn.createConfirmChannel((e4: unknown, cc: amqplib.ConfirmChannel) => {
                  log.push(["createConfirmChannel", err(e4)]);
                  cc.sendToQueue(queue, Buffer.from("c"), {}, (e5: unknown) => log.push(["confirmed", err(e5)]));
                  cc.waitForConfirms((e6: unknown) => {
                    log.push(["waitForConfirms", err(e6)]);
                    ch.checkQueue(uniqueName("missing"), (e7: unknown, ok7: unknown) => {
                      log.push(["checkQueue missing", err(e7), ok7]);
                      setTimeout(() => conn.close((e8: unknown) => log.push(["close", err(e8)])), 50);
                    });
                  });
                });
              },
              { noAck: false },
              (e9: unknown, ok9: { consumerTag: string }) => log.push(["consume", err(e9), typeof ok9.consumerTag]),
            );
          });
        });
      });
    });
  });
}

test("a callback program observes the same with warren/amqplib/callback_api as with amqplib's", async () => {
  const url = await getBrokerUrl();
  const normalize = (log: unknown[], queue: string) =>
    JSON.parse(
      JSON.stringify(log)
        .replaceAll(queue, "<queue>")
        .replace(/missing-[\w-]+/g, "<missing>"),
    );
  const qa = uniqueName("amqplib-cb-a");
  const qw = uniqueName("amqplib-cb-w");
  const expected = normalize(await program(amqplib, url, qa), qa);
  const actual = normalize(await program(warren as unknown as Lib, url, qw), qw);
  expect(expected.length).toBeGreaterThan(10);
  expect(actual).toEqual(expected);
}, 30_000);

test("connect(url, { recovery }, callback): setup gets a callback connection, a forced close is recovered, as with amqplib's", async () => {
  const url = await getBrokerUrl();
  const run = (lib: Lib, label: string) =>
    new Promise<unknown[]>((done, fail) => {
      const name = uniqueName(`amqplib-cb-recovery-${label}`);
      const log: unknown[] = [];
      const recovering = (
        lib.connect as unknown as (...a: unknown[]) => NodeJS.EventEmitter & { close(cb: () => void): void }
      )(
        url,
        {
          clientProperties: { connection_name: name },
          recovery: {
            initialDelay: 20,
            jitter: 0,
            setup: (conn: amqplib.Connection, setupDone: (err?: Error) => void) =>
              conn.createChannel((e: unknown) => {
                log.push(["setup", err(e), typeof conn.createConfirmChannel]);
                setupDone();
              }),
          },
        },
        (e: unknown, r: unknown) => {
          log.push(["connected", err(e), r === recovering]);
          if (e) return fail(e);
          void forceCloseConnection(name);
        },
      );
      recovering.on("disconnect", (e: Error) => log.push(["disconnect", e.message]));
      recovering.on("reconnect-scheduled", (i: { attempt: number }) => log.push(["reconnect-scheduled", i.attempt]));
      recovering.on("connect", () => {
        log.push(["connect event"]);
        if (log.filter((l) => (l as unknown[])[0] === "connect event").length === 2) recovering.close(() => done(log));
      });
    });
  const expected = await run(amqplib, "a");
  expect(expected.length).toBeGreaterThan(5);
  expect(await run(warren as unknown as Lib, "w")).toEqual(expected);
}, 30_000);
