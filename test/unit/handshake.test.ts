/**
 * The handshake without a socket (spec 2.2.4, "Connection"): start -> start-ok, [secure ->
 * secure-ok], tune -> tune-ok, open -> open-ok; tuned before tune-ok goes out; anything out of
 * that order is 505.
 */
import { expect, test } from "vitest";
import { FrameError } from "../../src/protocol/errors.js";
import { Handshake, type Tuned } from "../../src/client/handshake.js";
import { resolveOptions } from "../../src/client/options.js";
import type { AmqpError } from "../../src/client/errors.js";

function handshake(url = "amqp://u:p@h/v?heartbeat=30&frame_max=65536") {
  const log: string[] = [];
  const h = new Handshake(resolveOptions(url), {
    send: (m) =>
      log.push(
        `send ${m.name}${m.name === "connection.open" ? ` ${m.virtualHost}` : m.name === "connection.tune-ok" ? ` ${m.frameMax}/${m.channelMax}/${m.heartbeat}` : ""}`,
      ),
    tuned: (t: Tuned) => log.push(`tuned ${t.frameMax}/${t.channelMax}/${t.heartbeat}`),
    opened: () => log.push("opened"),
    refuse: (e: AmqpError) => log.push(`refused ${e.message}`),
  });
  return { h, log };
}
const start = (mechanisms = "PLAIN AMQPLAIN") =>
  ({
    name: "connection.start",
    versionMajor: 0,
    versionMinor: 9,
    serverProperties: {},
    mechanisms,
    locales: "en_US",
  }) as const;
const tune = { name: "connection.tune", channelMax: 2047, frameMax: 131072, heartbeat: 60 } as const;

test("start, secure, tune, open-ok: each answered in order, tuned before tune-ok", () => {
  const { h, log } = handshake();
  h.onMethod(start());
  h.onMethod({ name: "connection.secure", challenge: "" });
  h.onMethod(tune);
  expect(h.step).toBe("open-ok");
  h.onMethod({ name: "connection.open-ok" });
  expect(log).toEqual([
    "send connection.start-ok",
    "send connection.secure-ok",
    "tuned 65536/2047/30",
    "send connection.tune-ok 65536/2047/30",
    "send connection.open v",
    "opened",
  ]);
});

test("a step out of order is 505 UNEXPECTED_FRAME", () => {
  for (const m of [tune, { name: "connection.open-ok" } as const]) {
    const { h } = handshake();
    expect(() => h.onMethod(m)).toThrow(FrameError);
  }
  const { h } = handshake();
  h.onMethod(start());
  expect(() => h.onMethod(start())).toThrow(/out of order/);
});

test("a broker that does not offer our mechanism is refused, and nothing is sent", () => {
  const { h, log } = handshake();
  h.onMethod(start("EXTERNAL"));
  expect(log).toEqual([expect.stringMatching(/^refused .*does not offer SASL mechanism PLAIN \(it offers EXTERNAL\)/)]);
});
