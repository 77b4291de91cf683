/**
 * Model-based testing against the real broker (fast-check `commands` + `asyncModelRun`):
 * random sequences of API calls on two queues and a direct exchange -- declare, delete, bind,
 * unbind, publish (through the exchange and the default exchange), get with and without ack,
 * ack, reject with and without requeue, purge -- while a small model predicts each queue's
 * ready messages, in order. After every command the broker is asked (passive declares on the
 * same channel, so the broker has handled every earlier frame of it) and must agree.
 *
 * The model's rules are RabbitMQ's:
 * - a direct exchange routes a message to every queue bound with its routing key, once per queue;
 *   the default exchange to the queue named by it; an unroutable message is dropped;
 * - basic.get takes the head; its message-count is what is left ready;
 * - a rejected-with-requeue delivery goes back to its original position (RabbitMQ "Consumer
 *   Acknowledgements and Publisher Confirms": "placed back at its original position in the
 *   queue"), i.e. ready messages stay in publish order; without requeue it is dropped;
 * - purge removes ready messages only; deleting a queue drops its messages, its bindings and
 *   (for its unacked deliveries) any later requeue; deleting the exchange drops its bindings.
 *
 * Left out: settling a delivery of a deleted queue once a queue of the same name exists again.
 * The broker settles by queue name and the queue's own message number, so it acts on the new
 * queue's message with that number (seen on 3.10 and 4.3.6: requeueing the old queue's first
 * delivery put the new queue's first, unacked, delivery back). A CI run's seed found it.
 */
import fc from "fast-check";
import { expect, test } from "vitest";
import type { Channel, Message } from "../../src/index.js";
import { useConnections } from "../client/util.js";
import { uniqueName } from "../helpers/broker.js";

const open = useConnections();

interface Msg {
  body: string;
  /** Publish order: ready messages are kept sorted by it. */
  seq: number;
}
interface QueueModel {
  exists: boolean;
  /** Bumped on each declare after a delete: a requeue to an older incarnation is dropped. */
  incarnation: number;
  ready: Msg[];
}
interface Model {
  queues: [QueueModel, QueueModel];
  exchange: boolean;
  /** `${queueIndex}|${routingKey}` */
  bindings: Set<string>;
  /** Deliveries taken with ack, oldest first (in step with Real.unacked). */
  unacked: { q: number; incarnation: number; msg: Msg }[];
  nextSeq: number;
}
interface Real {
  ch: Channel;
  queues: [string, string];
  exchange: string;
  unacked: Message[];
}
type Cmd = fc.AsyncCommand<Model, Real>;

const KEYS = ["a", "b"] as const;

/** The broker agrees with the model: existence and ready count of each queue, existence of the exchange. */
async function agree(m: Model, r: Real): Promise<void> {
  for (const i of [0, 1] as const) {
    if (!m.queues[i].exists) continue;
    const d = await r.ch.queueDeclare(r.queues[i], { passive: true });
    expect(d.messageCount, `ready messages in queue ${i}`).toBe(m.queues[i].ready.length);
  }
  if (m.exchange) await r.ch.exchangeDeclare(r.exchange, "direct", { passive: true });
}

/**
 * After a requeue: the queue process answers the passive declare's `stat` call ahead of the
 * requeue cast already in its mailbox (RabbitMQ's gen_server2 prioritises `stat`), so the count
 * catches up a moment later. Wait for it (bounded), then check as usual.
 */
async function agreeEventually(m: Model, r: Real): Promise<void> {
  for (let i = 0; i < 200; i++) {
    let same = true;
    for (const q of [0, 1] as const) {
      if (
        m.queues[q].exists &&
        (await r.ch.queueDeclare(r.queues[q], { passive: true })).messageCount !== m.queues[q].ready.length
      )
        same = false;
    }
    if (same) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await agree(m, r);
}

function insertBySeq(ready: Msg[], msg: Msg): void {
  let at = ready.length;
  while (at > 0 && ready[at - 1]!.seq > msg.seq) at--;
  ready.splice(at, 0, msg);
}

class DeclareQueue implements Cmd {
  constructor(readonly q: 0 | 1) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const d = await r.ch.queueDeclare(r.queues[this.q]);
    const qm = m.queues[this.q];
    if (!qm.exists) {
      qm.exists = true;
      qm.incarnation++;
    }
    expect(d.messageCount).toBe(qm.ready.length);
    await agree(m, r);
  }
  toString = () => `declareQueue(${this.q})`;
}

class DeleteQueue implements Cmd {
  constructor(readonly q: 0 | 1) {}
  check = (m: Readonly<Model>) => m.queues[this.q].exists;
  async run(m: Model, r: Real) {
    const d = await r.ch.queueDelete(r.queues[this.q]);
    const qm = m.queues[this.q];
    expect(d.messageCount).toBe(qm.ready.length);
    qm.exists = false;
    qm.ready = [];
    for (const k of KEYS) m.bindings.delete(`${this.q}|${k}`);
    await agree(m, r);
    await expect(
      r.ch.connection.openChannel().then((c) => c.queueDeclare(r.queues[this.q], { passive: true })),
    ).rejects.toThrow(/NOT_FOUND|404/);
  }
  toString = () => `deleteQueue(${this.q})`;
}

class DeclareExchange implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    await r.ch.exchangeDeclare(r.exchange, "direct");
    m.exchange = true;
    await agree(m, r);
  }
  toString = () => "declareExchange";
}

class DeleteExchange implements Cmd {
  check = (m: Readonly<Model>) => m.exchange;
  async run(m: Model, r: Real) {
    await r.ch.exchangeDelete(r.exchange);
    m.exchange = false;
    m.bindings.clear();
    await agree(m, r);
  }
  toString = () => "deleteExchange";
}

class Bind implements Cmd {
  constructor(
    readonly q: 0 | 1,
    readonly key: string,
    readonly unbind: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.exchange && m.queues[this.q].exists;
  async run(m: Model, r: Real) {
    if (this.unbind) {
      await r.ch.queueUnbind(r.queues[this.q], r.exchange, this.key);
      m.bindings.delete(`${this.q}|${this.key}`);
    } else {
      await r.ch.queueBind(r.queues[this.q], r.exchange, this.key);
      m.bindings.add(`${this.q}|${this.key}`);
    }
    await agree(m, r);
  }
  toString = () => `${this.unbind ? "unbind" : "bind"}(${this.q}, ${this.key})`;
}

class PublishToExchange implements Cmd {
  constructor(readonly key: string) {}
  check = (m: Readonly<Model>) => m.exchange; // a publish to a missing exchange closes the channel (404)
  async run(m: Model, r: Real) {
    const msg = { body: `m${m.nextSeq}`, seq: m.nextSeq++ };
    await r.ch.publish(r.exchange, this.key, msg.body);
    for (const i of [0, 1] as const) if (m.bindings.has(`${i}|${this.key}`)) m.queues[i].ready.push(msg);
    await agree(m, r);
  }
  toString = () => `publish(exchange, ${this.key})`;
}

class PublishToQueue implements Cmd {
  constructor(readonly q: 0 | 1) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const msg = { body: `m${m.nextSeq}`, seq: m.nextSeq++ };
    await r.ch.publish("", r.queues[this.q], msg.body);
    if (m.queues[this.q].exists) m.queues[this.q].ready.push(msg);
    await agree(m, r);
  }
  toString = () => `publish(default, ${this.q})`;
}

class Get implements Cmd {
  constructor(
    readonly q: 0 | 1,
    readonly noAck: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.queues[this.q].exists; // a get on a missing queue is a 404
  async run(m: Model, r: Real) {
    const got = await r.ch.get(r.queues[this.q], { noAck: this.noAck });
    const qm = m.queues[this.q];
    const expected = qm.ready.shift();
    expect(got?.body.toString() ?? null).toBe(expected?.body ?? null);
    if (got !== null && expected !== undefined) {
      expect(got.fields.messageCount).toBe(qm.ready.length);
      if (!this.noAck) {
        m.unacked.push({ q: this.q, incarnation: qm.incarnation, msg: expected });
        r.unacked.push(got);
      }
    }
    await agree(m, r);
  }
  toString = () => `get(${this.q}${this.noAck ? ", noAck" : ""})`;
}

class Settle implements Cmd {
  constructor(
    readonly how: "ack" | "requeue" | "drop",
    readonly newest: boolean,
  ) {}
  check = (m: Readonly<Model>) => {
    const u = m.unacked[this.newest ? m.unacked.length - 1 : 0];
    if (u === undefined) return false;
    const qm = m.queues[u.q]!;
    return !(qm.exists && qm.incarnation !== u.incarnation); // see "Left out" above
  };
  async run(m: Model, r: Real) {
    const idx = this.newest ? m.unacked.length - 1 : 0;
    const [u] = m.unacked.splice(idx, 1);
    const [msg] = r.unacked.splice(idx, 1);
    const err = this.how === "ack" ? r.ch.ack(msg!) : r.ch.reject(msg!, { requeue: this.how === "requeue" });
    expect(err).toBeUndefined();
    const qm = m.queues[u!.q]!;
    if (this.how === "requeue" && qm.exists && qm.incarnation === u!.incarnation) insertBySeq(qm.ready, u!.msg);
    await (this.how === "requeue" ? agreeEventually(m, r) : agree(m, r));
  }
  toString = () => `${this.how}(${this.newest ? "newest" : "oldest"})`;
}

class Purge implements Cmd {
  constructor(readonly q: 0 | 1) {}
  check = (m: Readonly<Model>) => m.queues[this.q].exists;
  async run(m: Model, r: Real) {
    const d = await r.ch.queuePurge(r.queues[this.q]);
    expect(d.messageCount).toBe(m.queues[this.q].ready.length);
    m.queues[this.q].ready = [];
    await agree(m, r);
  }
  toString = () => `purge(${this.q})`;
}

const queueIndex = fc.constantFrom(0 as const, 1 as const);
const key = fc.constantFrom(...KEYS);
const commandArbs = [
  queueIndex.map((q) => new DeclareQueue(q)),
  queueIndex.map((q) => new DeleteQueue(q)),
  fc.constant(new DeclareExchange()),
  fc.constant(new DeleteExchange()),
  fc.tuple(queueIndex, key, fc.boolean()).map(([q, k, u]) => new Bind(q, k, u)),
  key.map((k) => new PublishToExchange(k)),
  key.map((k) => new PublishToExchange(k)), // publishes twice as likely: queues with something in them
  queueIndex.map((q) => new PublishToQueue(q)),
  fc.tuple(queueIndex, fc.boolean()).map(([q, n]) => new Get(q, n)),
  queueIndex.map((q) => new Get(q, false)),
  // settling twice as likely, so that deliveries are acked and requeued, not only piled up
  ...[1, 2].map(() =>
    fc
      .tuple(fc.constantFrom("ack" as const, "requeue" as const, "drop" as const), fc.boolean())
      .map(([h, n]) => new Settle(h, n)),
  ),
  queueIndex.map((q) => new Purge(q)),
];

test("random sequences of declare/bind/publish/get/ack/reject/purge/delete: the broker never diverges from the model", async () => {
  const conn = await open();
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.commands(commandArbs, { maxCommands: 50, size: "max" }), async (cmds) => {
      runs++;
      // A fresh channel and fresh names per run, so that one run (or a shrink) cannot see another's leftovers.
      const ch = await conn.openChannel();
      await ch.confirmSelect(); // publish resolves once the broker has routed (and enqueued) the message
      const real: Real = {
        ch,
        queues: [uniqueName("model-q0"), uniqueName("model-q1")],
        exchange: uniqueName("model-x"),
        unacked: [],
      };
      // Start from two queues bound to the exchange (q0 by "a", q1 by "b"), so that most
      // commands find something to act on; deletes and re-declares are among the commands.
      await ch.exchangeDeclare(real.exchange, "direct");
      for (const [i, k] of [
        [0, "a"],
        [1, "b"],
      ] as const) {
        await ch.queueDeclare(real.queues[i]);
        await ch.queueBind(real.queues[i], real.exchange, k);
      }
      const model: Model = {
        queues: [
          { exists: true, incarnation: 1, ready: [] },
          { exists: true, incarnation: 1, ready: [] },
        ],
        exchange: true,
        bindings: new Set(["0|a", "1|b"]),
        unacked: [],
        nextSeq: 0,
      };
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      } finally {
        // Clean up on a fresh channel: the run's channel may have been closed by a divergence.
        const c = await conn.openChannel();
        for (const q of real.queues) await c.queueDelete(q);
        await c.exchangeDelete(real.exchange);
        await c.close();
        await ch.close();
      }
    }),
    { numRuns: 100 },
  );
  expect(runs).toBeGreaterThanOrEqual(100);
});
