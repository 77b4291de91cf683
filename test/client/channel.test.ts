/**
 * Channels: many on one connection, ids reused only after close-ok, channel_max respected,
 * no delivery after close() resolves, calls on a closed channel failing through their promise
 * (or a returned error) and never by a throw. What RabbitMQ will not do on request -- a
 * channel.close crossing ours, channel.flow, a delivery for a consumer tag we never had -- is
 * played by the scripted fake server.
 */
import diagnostics from "node:diagnostics_channel";
import { describe, expect, test } from "vitest";
import {
  AbortError,
  AmqpError,
  ChannelClosedError,
  TimeoutError,
  connect,
  type Channel,
  type Message,
} from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import {
  Cursor,
  bodyFrame,
  headerFrame,
  longstr,
  methodFrame,
  shortstr,
  standardHandshake,
  startFakeServer,
  u16,
  u32,
  u64,
  u8,
  type FakeConnection,
} from "../helpers/fake-server.js";
import { eventually, outcome, take, untilReady, useConnections } from "./util.js";

const open = useConnections();

describe("many channels", () => {
  test("200 channels at once on one connection, each with its own id, each working", async () => {
    const conn = await open();
    const channels = await Promise.all(Array.from({ length: 200 }, () => conn.openChannel()));
    expect(new Set(channels.map((c) => c.id)).size).toBe(200);
    const names = await Promise.all(channels.map(async (ch) => (await ch.queueDeclare("", { exclusive: true })).queue));
    expect(new Set(names).size).toBe(200);
    await Promise.all(channels.map((ch) => ch.close()));
    expect(channels.every((ch) => ch.closed)).toBe(true);
    expect(conn.closed).toBe(false);
  });

  test("channel_max is respected, and an id is reused only after its close-ok", async () => {
    const conn = await open({ channelMax: 3 });
    expect(conn.channelMax).toBe(3);
    const chs = await Promise.all([conn.openChannel(), conn.openChannel(), conn.openChannel()]);
    expect(chs.map((c) => c.id).sort()).toEqual([1, 2, 3]);
    const full = await outcome(conn.openChannel());
    expect((full as { error: AmqpError }).error).toBeInstanceOf(AmqpError);
    expect((full as { error: AmqpError }).error.message).toMatch(/all 3 channels are in use \(channel_max/);
    // Closing: channel.close is out, close-ok not yet in, so the id is not free yet.
    const closing = chs[1]!.close();
    const stillFull = await outcome(conn.openChannel());
    expect(stillFull.ok).toBe(false);
    await closing;
    const again = await conn.openChannel();
    expect(again.id).toBe(chs[1]!.id);
    await again.queueDeclare("", { exclusive: true });
    expect(conn.closed).toBe(false);
  });
});

describe("after close", () => {
  test("once channel.close() resolves, no further delivery reaches its consumers", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const pub = await conn.openChannel();
    const { queue } = await pub.queueDeclare("", { exclusive: true });
    let got = 0;
    await ch.consume(queue, () => void got++, { noAck: true });
    // A stream of messages keeps arriving while we close.
    const flood = (async () => {
      for (let i = 0; i < 2000 && !pub.closed; i++) await pub.publish("", queue, "x");
    })();
    await eventually(() => got > 10, "deliveries to start");
    await ch.close();
    const atClose = got;
    await flood;
    // A round trip on the connection, and several turns of the event loop: nothing more arrives.
    await pub.queueDeclare(queue, { passive: true });
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(got).toBe(atClose);
  });

  test("ack/nack/reject on a closed channel return its error; publish and every call reject; nothing throws", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const { queue } = await ch.queueDeclare("", { autoDelete: false });
    await ch.publish("", queue, "m");
    const msg = await eventually(() => ch.get(queue).then((m) => m ?? undefined), "a message");
    await ch.close();
    let results: unknown[] = [];
    expect(() => {
      results = [ch.ack(msg), ch.nack(msg), ch.reject(msg), ch.ack(msg, { multiple: true })];
    }).not.toThrow();
    for (const r of results) expect(r).toBeInstanceOf(ChannelClosedError);
    const calls: Promise<unknown>[] = [
      ch.publish("", queue, "after"),
      ch.get(queue),
      ch.prefetch(1),
      ch.queuePurge(queue),
      ch.confirmSelect(),
      ch.txSelect(),
      ch.recover(),
    ];
    for (const r of await Promise.all(calls.map((p) => outcome(p)))) {
      expect(r.ok).toBe(false);
      expect((r as { error: ChannelClosedError }).error).toMatchObject({ replyCode: 200, initiatedBy: "client" });
    }
    // The message was never acked: the broker requeued it when the channel closed.
    const other = await conn.openChannel();
    await untilReady(other, queue, 1);
    await other.queueDelete(queue);
  });

  test("ack/nack/reject of something that is not a message or a valid tag return an error, never throw; the channel carries on", async () => {
    const ch = await (await open()).openChannel();
    for (const bad of [undefined, null, {}, "7", -1, 1.5, Number.NaN]) {
      for (const settle of [(x: never) => ch.ack(x), (x: never) => ch.nack(x), (x: never) => ch.reject(x)]) {
        let r: unknown;
        expect(() => (r = settle(bad as never))).not.toThrow();
        expect(r).toBeInstanceOf(AmqpError);
      }
    }
    expect(ch.closed).toBe(false);
    await ch.queueDeclare("", { exclusive: true }); // nothing bad was sent: the broker did not close the channel
  });

  test("publish on a channel whose connection is gone rejects, never throws", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    await conn.close();
    let p: Promise<void> | undefined;
    expect(() => (p = ch.publish("", "q", "x"))).not.toThrow();
    expect((await outcome(p!)).ok).toBe(false);
    expect(ch.ack(1)).toBeInstanceOf(AmqpError);
  });
});

// ---------------------------------------------------------------------------------------------
// Fake-server scripts (class 20 channel: open 10/11, flow 20/21, close 40/41; class 60 basic).

async function openChannelOnServer(c: FakeConnection): Promise<number> {
  const m = await c.expectMethod(20, 10);
  await c.send(methodFrame(m.channel, 20, 11, longstr("")));
  return m.channel;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("what the broker will not do on request (fake server)", () => {
  test("a channel.close crossing ours is answered with close-ok, and our close() still completes", async () => {
    const seen: string[] = [];
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      const ch = await openChannelOnServer(c);
      await c.expectMethod(20, 40); // the client's channel.close
      seen.push("client close");
      // Ours crosses it: the client must answer close-ok even though it is closing itself.
      await c.send(
        methodFrame(ch, 20, 40, Buffer.concat([u16(406), shortstr("PRECONDITION_FAILED - crossing"), u16(0), u16(0)])),
      );
      await c.expectMethod(20, 41);
      seen.push("client close-ok");
      await c.send(methodFrame(ch, 20, 41));
    });
    const conn = await connect({ url: server.url(), timeout: 5000 });
    try {
      const ch = await conn.openChannel();
      await ch.close();
      expect(seen).toEqual(["client close", "client close-ok"]);
      expect(ch.closed).toBe(true);
      expect(conn.closed).toBe(false);
      await server.done();
    } finally {
      await server.close();
      await conn.close();
    }
  });

  test("deliveries still in flight while we close (even one cut between its frames) are dropped; the connection carries on", async () => {
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      const ch = await openChannelOnServer(c);
      await c.expectMethod(60, 20); // basic.consume
      await c.send(methodFrame(ch, 60, 21, shortstr("ctag")));
      const deliver = (tag: number) =>
        methodFrame(ch, 60, 60, Buffer.concat([shortstr("ctag"), u64(tag), u8(0), shortstr(""), shortstr("q")]));
      // The broker cancels the consumer (so the client's close cancels nothing first), and a
      // delivery crossing that cancel has its method out before the client's close, its content after it.
      await c.send(methodFrame(ch, 60, 30, Buffer.concat([shortstr("ctag"), u8(1)]))); // basic.cancel, no-wait
      await c.send(deliver(1));
      await c.expectMethod(20, 40); // the client's channel.close
      await c.send(
        Buffer.concat([
          headerFrame(ch, 60, 5),
          bodyFrame(ch, "first"),
          deliver(2),
          headerFrame(ch, 60, 6),
          bodyFrame(ch, "second"),
        ]),
      );
      await c.send(methodFrame(ch, 20, 41)); // close-ok
      // The connection is still fine: a new channel opens.
      await openChannelOnServer(c);
    });
    const conn = await connect({ url: server.url(), timeout: 5000 });
    const errors: unknown[] = [];
    conn.on("close", (e) => errors.push(e));
    try {
      const ch = await conn.openChannel();
      const got: Message[] = [];
      let sawDeliver!: () => void;
      const delivered = new Promise<void>((r) => (sawDeliver = r));
      const onIn = (m: unknown) => {
        const f = (m as { frame: { type: number; method?: { name: string } } }).frame;
        if (f.type === 1 && f.method?.name === "basic.deliver") sawDeliver();
      };
      diagnostics.subscribe("warren:frame:in", onIn);
      try {
        await ch.consume("q", (m) => void got.push(m), { noAck: true });
        await delivered;
      } finally {
        diagnostics.unsubscribe("warren:frame:in", onIn);
      }
      await ch.close();
      const again = await conn.openChannel();
      expect(again.closed).toBe(false);
      expect(got).toEqual([]);
      expect(errors).toEqual([]);
      expect(conn.closed).toBe(false);
    } finally {
      await server.close();
      await conn.close();
    }
  });

  test("channel.flow: flow-ok is sent; publishes are held (not sent) while inactive and go out in order when active again", async () => {
    const resume = deferred();
    const log: string[] = [];
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      const ch = await openChannelOnServer(c);
      await c.send(methodFrame(ch, 20, 20, u8(0))); // flow active=false
      const ok = await c.expectMethod(20, 21);
      log.push(`flow-ok ${new Cursor(ok.args).u8()}`);
      // The client now publishes, then asks for basic.qos: the qos must come first, no publish before it.
      const next = await c.readMethod();
      log.push(`${next.classId}.${next.methodId}`);
      await c.send(methodFrame(ch, 60, 11)); // qos-ok
      await resume.promise;
      await c.send(methodFrame(ch, 20, 20, u8(1))); // flow active=true
      const ok2 = await c.expectMethod(20, 21);
      log.push(`flow-ok ${new Cursor(ok2.args).u8()}`);
      for (let i = 0; i < 2; i++) {
        const pub = new Cursor((await c.expectMethod(60, 40)).args);
        pub.u16();
        pub.shortstr();
        log.push(`publish ${pub.shortstr()}`);
        await c.readFrame(); // header
        await c.readFrame(); // body
      }
    });
    const conn = await connect({ url: server.url(), timeout: 5000 });
    try {
      const ch = await conn.openChannel();
      await eventually(() => log.length === 1, "flow-ok");
      let settled = 0;
      const p1 = ch.publish("", "first", "1").then(() => settled++);
      const ac = new AbortController();
      const dropped = outcome(ch.publish("", "aborted", "never sent", { signal: ac.signal }));
      const p2 = ch.publish("", "second", "2").then(() => settled++);
      ac.abort(); // held by flow: taken out of the line, never sent (the server sees only first and second)
      expect(((await dropped) as { error: unknown }).error).toBeInstanceOf(AbortError);
      await ch.prefetch(1);
      expect(log).toEqual(["flow-ok 0", "60.10"]);
      expect(settled).toBe(0);
      resume.resolve();
      await Promise.all([p1, p2]);
      await server.done();
      expect(log).toEqual(["flow-ok 0", "60.10", "flow-ok 1", "publish first", "publish second"]);
    } finally {
      await server.close();
      await conn.close();
    }
  });

  test("a delivery for a consumer tag we never had is dropped without a throw; the channel carries on", async () => {
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      const ch = await openChannelOnServer(c);
      await c.send(
        Buffer.concat([
          methodFrame(ch, 60, 60, Buffer.concat([shortstr("ghost"), u64(1), u8(0), shortstr(""), shortstr("q")])),
          headerFrame(ch, 60, 5),
          bodyFrame(ch, "hello"),
        ]),
      );
      await c.expectMethod(60, 10);
      await c.send(methodFrame(ch, 60, 11)); // qos-ok: the channel still answers
    });
    const conn = await connect({ url: server.url(), timeout: 5000 });
    const errors: unknown[] = [];
    conn.on("close", (e) => errors.push(e));
    try {
      const ch: Channel = await conn.openChannel();
      ch.on("close", (e) => errors.push(e));
      await ch.prefetch(1);
      expect(ch.closed).toBe(false);
      expect(conn.closed).toBe(false);
      expect(errors).toEqual([]);
    } finally {
      await server.close();
      await conn.close();
    }
  });
});

describe("synchronous calls are bounded (fake server that stops answering)", () => {
  test("a call with no reply rejects with TimeoutError after the timeout; the channel, no longer trustworthy, is closed and later calls fail", async () => {
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      await openChannelOnServer(c);
      await c.expectMethod(50, 10); // queue.declare: never answered
      await c.expectMethod(20, 40); // the client gives the channel up
      // channel.open on a second channel is never answered either
      await c.expectMethod(20, 10);
    });
    const conn = await connect({ url: server.url(), timeout: 100 });
    try {
      const ch = await conn.openChannel();
      const declaring = outcome(ch.queueDeclare("q"));
      const queued = outcome(ch.queueBind("q", "x"));
      const r = await declaring;
      expect((r as { error: unknown }).error).toBeInstanceOf(TimeoutError);
      expect((r as { error: Error }).error.message).toMatch(/queue\.declare got no reply within 100 ms/);
      expect(((await queued) as { error: unknown }).error).toBeInstanceOf(AmqpError);
      expect(ch.closed).toBe(true);
      expect((await outcome(ch.prefetch(1))).ok).toBe(false);
      const opening = await outcome(conn.openChannel());
      expect((opening as { error: unknown }).error).toBeInstanceOf(TimeoutError);
    } finally {
      await server.close();
      await conn.close();
    }
  });
});

describe("per-call timeout and AbortSignal (fake server)", () => {
  test("a call's own timeout overrides the connection's", async () => {
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      await openChannelOnServer(c);
      await c.expectMethod(50, 10); // never answered
    });
    const conn = await connect({ url: server.url(), timeout: 10_000 });
    try {
      const ch = await conn.openChannel();
      const r = await outcome(ch.queueDeclare("q", { timeout: 50 }));
      expect((r as { error: unknown }).error).toBeInstanceOf(TimeoutError);
      expect((r as { error: Error }).error.message).toMatch(/within 50 ms/);
    } finally {
      await server.close();
      await conn.close();
    }
  });

  test("aborting a queued call: never sent; aborting a sent one: the caller stops waiting, its reply is read in turn and the next call goes on", async () => {
    const answer = deferred();
    const log: string[] = [];
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      const ch = await openChannelOnServer(c);
      await c.expectMethod(50, 10); // queue.declare
      await answer.promise;
      await c.send(methodFrame(ch, 50, 11, Buffer.concat([shortstr("q"), u32(0), u32(0)])));
      const next = await c.readMethod();
      log.push(`${next.classId}.${next.methodId}`);
      await c.send(methodFrame(ch, 50, 31, u32(3))); // purge-ok
    });
    const conn = await connect({ url: server.url(), timeout: 5000 });
    try {
      const ch = await conn.openChannel();
      const sent = new AbortController();
      const queued = new AbortController();
      const declaring = outcome(ch.queueDeclare("q", { signal: sent.signal }));
      const binding = outcome(ch.queueBind("q", "x", "", {}, { signal: queued.signal }));
      const purging = ch.queuePurge("q");
      queued.abort();
      sent.abort();
      const d = (await declaring) as { error: Error };
      expect(d.error).toBeInstanceOf(AbortError);
      expect(d.error.message).toMatch(/after it was sent/);
      const b = (await binding) as { error: Error };
      expect(b.error).toBeInstanceOf(AbortError);
      expect(b.error.message).toMatch(/before it was sent/);
      answer.resolve();
      expect(await purging).toEqual({ messageCount: 3 });
      expect(log).toEqual(["50.30"]); // the bind never went out
      expect(ch.closed).toBe(false);
    } finally {
      await server.close();
      await conn.close();
    }
  });

  test("an openChannel aborted after channel.open went out closes that channel again instead of leaking it", async () => {
    const log: string[] = [];
    const server = await startFakeServer(async (c) => {
      await standardHandshake(c);
      const open = await c.expectMethod(20, 10);
      log.push(`open ${open.channel}`);
      const close = await c.expectMethod(20, 40);
      log.push(`close ${close.channel}`);
      await c.send(Buffer.concat([methodFrame(open.channel, 20, 11, longstr("")), methodFrame(open.channel, 20, 41)]));
    });
    const conn = await connect({ url: server.url(), timeout: 5000 });
    try {
      const ac = new AbortController();
      const opening = outcome(conn.openChannel({ signal: ac.signal }));
      await eventually(() => log.length === 1, "channel.open at the server");
      ac.abort();
      expect(((await opening) as { error: unknown }).error).toBeInstanceOf(AbortError);
      await eventually(() => log.length === 2, "channel.close at the server");
      expect(log).toEqual(["open 1", "close 1"]);
      expect(conn.closed).toBe(false);
      expect((await outcome(conn.openChannel({ signal: AbortSignal.abort() }))).ok).toBe(false);
    } finally {
      await server.close();
      await conn.close();
    }
  });

  test("a per-call timeout setTimeout cannot honour (Infinity, 0) rejects that call with a RangeError; the channel carries on (real broker)", async () => {
    const ch = await (await open()).openChannel();
    for (const timeout of [Infinity, 0, 2 ** 31]) {
      const r = (await outcome(ch.queueDeclare("", { exclusive: true, timeout }))) as { error: Error };
      expect(r.error).toBeInstanceOf(RangeError);
      expect(r.error.message).toMatch(/timeout must be a number of ms from 1 to 2147483647/);
      expect(((await outcome(ch.waitForConfirms({ timeout }))) as { error: unknown }).error).toBeInstanceOf(RangeError);
    }
    expect((await ch.queueDeclare("", { exclusive: true })).queue).toMatch(/^amq\.gen-/);
  });

  test("a callback consumer's signal cancels it (real broker)", async () => {
    const ch = await (await open()).openChannel();
    const { queue } = await ch.queueDeclare("", { exclusive: true });
    const ac = new AbortController();
    await ch.consume(queue, () => undefined, { signal: ac.signal });
    expect((await ch.queueDeclare(queue, { passive: true })).consumerCount).toBe(1);
    ac.abort();
    await eventually(
      async () => (await ch.queueDeclare(queue, { passive: true })).consumerCount === 0,
      "the consumer to be cancelled",
    );
    expect(
      ((await outcome(ch.consume(queue, () => undefined, { signal: AbortSignal.abort() }))) as { error: unknown })
        .error,
    ).toBeInstanceOf(AbortError);
  });
});

describe("unicode", () => {
  test("unicode queue and exchange names, routing keys and bodies round-trip", async () => {
    const conn = await open();
    const ch = await conn.openChannel();
    const x = uniqueName("交換-🐇");
    const q = uniqueName("очередь-ü");
    const key = "ключ.🔑.ß";
    await ch.exchangeDeclare(x, "direct", { autoDelete: true });
    await ch.queueDeclare(q, { exclusive: true });
    await ch.queueBind(q, x, key);
    const body = "héllo wörld — 你好 🐇\u0000end";
    const t = take(1);
    await ch.consume(q, t.onMessage, { noAck: true });
    await ch.publish(x, key, body, { headers: { ключ: "значение ✓" }, type: "тип" });
    const [m] = (await t.done) as [Message];
    expect(m.body.toString("utf8")).toBe(body);
    expect(m.fields.exchange).toBe(x);
    expect(m.fields.routingKey).toBe(key);
    expect(m.properties.headers).toEqual({ ключ: "значение ✓" });
    expect(m.properties.type).toBe("тип");
    expect((await ch.queueDeclare(q, { passive: true })).queue).toBe(q);
  });
});
