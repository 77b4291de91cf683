/**
 * The stand-in broker of the client-only mode (`npm run bench -- --null-broker`): a small AMQP
 * 0-9-1 server that keeps counts, not messages, so that what a scenario measures is the client.
 *
 *   node --import tsx bench/null-broker.ts [port]     prints "listening <port>" once it listens
 *
 * - The handshake (PLAIN/AMQPLAIN, any user), channels, and the methods the scenarios and the
 *   harness use: exchange.declare/delete, queue.declare (a passive one answers the count, so
 *   "the broker holds them all" still ends a publish run)/bind/purge/delete, basic.qos,
 *   confirm.select, basic.consume/cancel, basic.ack/nack/reject, channel and connection close.
 * - basic.publish is counted per queue (the default exchange, or a fanout/direct exchange's
 *   bindings) without decoding its header or keeping its body; in confirm mode the publishes of
 *   one socket read are acked by one basic.ack (multiple).
 * - basic.consume streams synthetic deliveries of the counted messages (bodies of the last size
 *   published to the queue) as fast as the socket drains, honouring the prefetch and the acks;
 *   a queue with a consumer forwards the real bodies of new publishes instead (latency).
 * Incoming frames are cut by their 7-byte header; only method frames other than basic.publish
 * and basic.ack go through warren's codec. Its own CPU per message is in the report, beside the
 * clients'.
 */
import net from "node:net";
import { frame } from "./clients/raw.js";
import { decodeMethodBytes, encodeMethod, type Method } from "../src/protocol/methods.js";
import { Writer } from "../src/protocol/writer.js";

const PUBLISH = 0x003c0028;
const ACK = 0x003c0050;
const REJECT = 0x003c005a;
const NACK = 0x003c0078;

interface Queue {
  name: string;
  count: number;
  bodySize: number;
  consumers: Consumer[];
}

interface Consumer {
  tag: string;
  channel: ChannelState;
  queue: Queue;
  noAck: boolean;
  /** Pre-encoded basic.deliver + header + body of a synthetic delivery; the tag is patched in. */
  template: Buffer;
  tagOffset: number;
}

interface ChannelState {
  id: number;
  session: Session;
  confirm: boolean;
  published: number;
  confirmedThrough: number;
  prefetch: number;
  /** Delivery tags: the last one sent, and how many are settled. */
  delivered: number;
  ackedThrough: number;
  ackedAbove: Set<number>;
  /** The publish whose content is being read (one object per channel, reused). */
  pending: { active: boolean; targets: Queue[]; size: number; received: number; chunks: Buffer[] | undefined };
  /** The last publish's exchange and routing key, as bytes, and where they routed: most publishes repeat them. */
  lastAddress: Buffer;
  lastTargets: Queue[];
  lastGeneration: number;
  consumers: Map<string, Consumer>;
}

const queues = new Map<string, Queue>();
const exchanges = new Map<string, { type: string; bindings: { queue: string; key: string }[] }>();
let serverNamed = 0;
/** Bumped whenever queues, exchanges or bindings change: a cached route is stale then. */
let generation = 0;

function queueOf(name: string): Queue {
  let q = queues.get(name);
  if (q === undefined) {
    queues.set(name, (q = { name, count: 0, bodySize: 16, consumers: [] }));
    generation++;
  }
  return q;
}

function methodFrame(channel: number, m: Method): Buffer {
  const w = new Writer(512);
  encodeMethod(w, m);
  return frame(1, channel, w.take());
}

function contentFrames(channel: number, body: Uint8Array): Buffer {
  const header = Buffer.alloc(14);
  header.writeUInt16BE(60, 0);
  header.writeBigUInt64BE(BigInt(body.length), 4);
  return Buffer.concat([frame(2, channel, header), frame(3, channel, body)]);
}

class Session {
  private buf: Buffer = Buffer.alloc(0);
  private readonly channels = new Map<number, ChannelState>();
  /** The channel of the previous frame: content frames follow their method on the same channel. */
  private last: ChannelState | undefined;
  private started = false;
  private out: Buffer[] = [];
  private waitingDrain = false;
  private pumping = false;

  constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("drain", () => {
      this.waitingDrain = false;
      this.pump();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => this.closeAll());
  }

  private send(b: Buffer): void {
    this.out.push(b);
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const all = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    if (!this.socket.write(all)) this.waitingDrain = true;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let off = 0;
    if (!this.started) {
      if (this.buf.length < 8) return;
      this.started = true;
      off = 8;
      this.send(
        methodFrame(0, {
          name: "connection.start",
          versionMajor: 0,
          versionMinor: 9,
          serverProperties: {
            product: "warren null broker",
            version: "0",
            capabilities: {
              publisher_confirms: true,
              "basic.nack": true,
              consumer_cancel_notify: true,
              per_consumer_qos: true,
              "connection.blocked": true,
              authentication_failure_close: true,
              exchange_exchange_bindings: true,
            },
          },
          mechanisms: "PLAIN AMQPLAIN",
          locales: "en_US",
        }),
      );
    }
    const buf = this.buf;
    while (buf.length - off >= 8) {
      const size = buf.readUInt32BE(off + 3);
      if (buf.length - off < size + 8) break;
      const type = buf[off]!;
      const channel = (buf[off + 1]! << 8) | buf[off + 2]!;
      const p = off + 7;
      const ch =
        this.last !== undefined && this.last.id === channel ? this.last : (this.last = this.channels.get(channel));
      if (type === 1) this.onMethod(channel, ch, buf, p, size);
      else if (type === 2) this.onHeader(ch, buf, p);
      else if (type === 3) this.onBody(ch, buf, p, size);
      off += size + 8;
    }
    this.buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
    // One basic.ack (multiple) per channel per read: what "acks confirms per read" means.
    for (const ch of this.channels.values()) {
      if (ch.confirm && ch.published > ch.confirmedThrough) {
        ch.confirmedThrough = ch.published;
        this.send(methodFrame(ch.id, { name: "basic.ack", deliveryTag: ch.published, multiple: true }));
      }
    }
    this.flush();
    this.pump();
  }

  private onMethod(channel: number, ch: ChannelState | undefined, buf: Buffer, p: number, size: number): void {
    const id = buf.readUInt32BE(p);
    if (id === PUBLISH && ch !== undefined) {
      // reserved short, then exchange and routing key (shortstrs): compared as bytes with the
      // previous publish's, and decoded only when they differ.
      const from = p + 6;
      const to = from + 1 + buf[from]! + 1 + buf[from + 1 + buf[from]!]!;
      let targets = ch.lastTargets;
      if (ch.lastGeneration !== generation || buf.compare(ch.lastAddress, 0, ch.lastAddress.length, from, to) !== 0) {
        const exchange = buf.toString("latin1", from + 1, from + 1 + buf[from]!);
        const k = from + 1 + buf[from]!;
        targets = this.route(exchange, buf.toString("latin1", k + 1, k + 1 + buf[k]!));
        ch.lastAddress = Buffer.from(buf.subarray(from, to));
        ch.lastTargets = targets;
        ch.lastGeneration = generation;
      }
      const pending = ch.pending;
      pending.active = true;
      pending.targets = targets;
      pending.size = 0;
      pending.received = 0;
      pending.chunks =
        targets.length === 1
          ? targets[0]!.consumers.length > 0
            ? []
            : undefined
          : targets.some((q) => q.consumers.length > 0)
            ? []
            : undefined;
      return;
    }
    if ((id === ACK || id === REJECT || id === NACK) && ch !== undefined) {
      const tag = Number(buf.readBigUInt64BE(p + 4));
      const bits = buf[p + 12]!;
      const multiple = id !== REJECT && (bits & 1) !== 0;
      const requeue = id === REJECT ? (bits & 1) !== 0 : id === NACK && (bits & 2) !== 0;
      const settled = this.settle(ch, tag, multiple);
      if (requeue && settled > 0) {
        const q = ch.consumers.values().next().value?.queue;
        if (q) q.count += settled;
      }
      return;
    }
    this.onOtherMethod(channel, ch, decodeMethodBytes(buf.subarray(p, p + size)));
  }

  /** Settle deliveries up to `tag` (or just it); returns how many were settled now. */
  private settle(ch: ChannelState, tag: number, multiple: boolean): number {
    const before = ch.ackedThrough + ch.ackedAbove.size;
    if (multiple) {
      if (tag > ch.ackedThrough) ch.ackedThrough = tag;
      for (const t of ch.ackedAbove) if (t <= ch.ackedThrough) ch.ackedAbove.delete(t);
    } else if (tag === ch.ackedThrough + 1) ch.ackedThrough = tag;
    else if (tag > ch.ackedThrough) ch.ackedAbove.add(tag);
    while (ch.ackedAbove.delete(ch.ackedThrough + 1)) ch.ackedThrough++;
    return ch.ackedThrough + ch.ackedAbove.size - before;
  }

  private route(exchange: string, key: string): Queue[] {
    if (exchange === "") return [queueOf(key)];
    const x = exchanges.get(exchange);
    if (x === undefined) return [];
    return x.bindings.filter((b) => x.type === "fanout" || b.key === key).map((b) => queueOf(b.queue));
  }

  private onHeader(ch: ChannelState | undefined, buf: Buffer, p: number): void {
    if (ch === undefined || !ch.pending.active) return;
    // Body sizes above 2^32 do not occur here: the high word is ignored.
    ch.pending.size = buf.readUInt32BE(p + 8);
    if (ch.pending.size === 0) this.published(ch);
  }

  private onBody(ch: ChannelState | undefined, buf: Buffer, p: number, size: number): void {
    if (ch === undefined || !ch.pending.active) return;
    const pending = ch.pending;
    pending.received += size;
    pending.chunks?.push(Buffer.from(buf.subarray(p, p + size)));
    if (pending.received >= pending.size) this.published(ch);
  }

  private published(ch: ChannelState): void {
    const { targets, size, chunks } = ch.pending;
    ch.pending.active = false;
    ch.published++;
    for (const q of targets) {
      q.bodySize = size;
      const c = q.consumers[0];
      if (c !== undefined && chunks !== undefined) c.channel.session.deliverNow(c, Buffer.concat(chunks));
      else q.count++;
    }
  }

  private onOtherMethod(channel: number, ch: ChannelState | undefined, m: Method): void {
    const reply = (r: Method) => this.send(methodFrame(channel, r));
    switch (m.name) {
      case "connection.start-ok":
        return reply({ name: "connection.tune", channelMax: 2047, frameMax: 131072, heartbeat: 0 });
      case "connection.tune-ok":
        return;
      case "connection.open":
        return reply({ name: "connection.open-ok" });
      case "connection.close":
        reply({ name: "connection.close-ok" });
        this.flush();
        this.socket.end();
        return;
      case "channel.open":
        this.channels.set(channel, {
          id: channel,
          session: this,
          confirm: false,
          published: 0,
          confirmedThrough: 0,
          prefetch: 0,
          delivered: 0,
          ackedThrough: 0,
          ackedAbove: new Set(),
          pending: { active: false, targets: [], size: 0, received: 0, chunks: undefined },
          lastAddress: Buffer.alloc(0),
          lastTargets: [],
          lastGeneration: -1,
          consumers: new Map(),
        });
        return reply({ name: "channel.open-ok" });
      case "channel.close":
        if (ch) this.closeChannel(ch);
        return reply({ name: "channel.close-ok" });
      case "channel.close-ok":
        return;
      case "confirm.select":
        if (ch) ch.confirm = true;
        if (!m.noWait) reply({ name: "confirm.select-ok" });
        return;
      case "basic.qos":
        if (ch) ch.prefetch = m.prefetchCount;
        return reply({ name: "basic.qos-ok" });
      case "exchange.declare":
        if (!m.passive && !exchanges.has(m.exchange)) exchanges.set(m.exchange, { type: m.type, bindings: [] });
        generation++;
        if (!m.noWait) reply({ name: "exchange.declare-ok" });
        return;
      case "exchange.delete":
        exchanges.delete(m.exchange);
        generation++;
        if (!m.noWait) reply({ name: "exchange.delete-ok" });
        return;
      case "queue.declare": {
        if (m.passive && !queues.has(m.queue)) {
          reply({
            name: "channel.close",
            replyCode: 404,
            replyText: `NOT_FOUND - no queue '${m.queue}'`,
            classId: 50,
            methodId: 10,
          });
          if (ch) this.closeChannel(ch);
          return;
        }
        const q = queueOf(m.queue === "" ? `amq.gen-null-${++serverNamed}` : m.queue);
        if (!m.noWait)
          reply({ name: "queue.declare-ok", queue: q.name, messageCount: q.count, consumerCount: q.consumers.length });
        return;
      }
      case "queue.bind":
        exchanges.get(m.exchange)?.bindings.push({ queue: m.queue, key: m.routingKey });
        generation++;
        if (!m.noWait) reply({ name: "queue.bind-ok" });
        return;
      case "queue.purge": {
        const q = queues.get(m.queue);
        const n = q?.count ?? 0;
        if (q) q.count = 0;
        if (!m.noWait) reply({ name: "queue.purge-ok", messageCount: n });
        return;
      }
      case "queue.delete": {
        const q = queues.get(m.queue);
        queues.delete(m.queue);
        generation++;
        for (const x of exchanges.values()) x.bindings = x.bindings.filter((b) => b.queue !== m.queue);
        if (!m.noWait) reply({ name: "queue.delete-ok", messageCount: q?.count ?? 0 });
        return;
      }
      case "basic.consume": {
        if (!ch) return;
        const q = queueOf(m.queue);
        const tag = m.consumerTag || `amq.ctag-null-${++serverNamed}`;
        const c = consumerOf(ch, q, tag, m.noAck);
        ch.consumers.set(tag, c);
        q.consumers.push(c);
        if (!m.noWait) reply({ name: "basic.consume-ok", consumerTag: tag });
        return;
      }
      case "basic.cancel": {
        const c = ch?.consumers.get(m.consumerTag);
        if (c) this.removeConsumer(c);
        if (!m.noWait) reply({ name: "basic.cancel-ok", consumerTag: m.consumerTag });
        return;
      }
      default:
        return;
    }
  }

  /** Stream synthetic deliveries while the socket drains, within each consumer's prefetch. */
  private pump(): void {
    if (this.pumping || this.waitingDrain) return;
    this.pumping = true;
    try {
      let progress = true;
      while (progress && !this.waitingDrain) {
        progress = false;
        for (const ch of this.channels.values()) {
          for (const c of ch.consumers.values()) {
            const n = this.room(c);
            if (n === 0) continue;
            const block = Buffer.allocUnsafe(n * c.template.length);
            for (let i = 0; i < n; i++) {
              const at = i * c.template.length;
              c.template.copy(block, at);
              block.writeUInt32BE(++ch.delivered >>> 0, at + c.tagOffset + 4);
            }
            c.queue.count -= n;
            if (c.noAck) ch.ackedThrough = ch.delivered;
            this.send(block);
            this.flush();
            progress = true;
          }
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  /** How many deliveries may go to `c` now (a block at most). */
  private room(c: Consumer): number {
    let n = Math.min(c.queue.count, 512);
    if (!c.noAck && c.channel.prefetch > 0)
      n = Math.min(n, c.channel.prefetch - (c.channel.delivered - c.channel.ackedThrough - c.channel.ackedAbove.size));
    return Math.max(0, n);
  }

  private removeConsumer(c: Consumer): void {
    c.channel.consumers.delete(c.tag);
    c.queue.consumers = c.queue.consumers.filter((x) => x !== c);
  }

  /** The broker requeues what a closed channel left unacked. */
  private closeChannel(ch: ChannelState): void {
    const unacked = ch.delivered - ch.ackedThrough - ch.ackedAbove.size;
    const q = ch.consumers.values().next().value?.queue;
    if (q && unacked > 0) q.count += unacked;
    for (const c of ch.consumers.values()) this.removeConsumer(c);
    this.channels.delete(ch.id);
    if (this.last === ch) this.last = undefined;
  }

  private closeAll(): void {
    for (const ch of [...this.channels.values()]) this.closeChannel(ch);
  }

  /** A real body, published to a queue with a consumer on this session: delivered at once. */
  deliverNow(c: Consumer, body: Buffer): void {
    const m = methodFrame(c.channel.id, {
      name: "basic.deliver",
      consumerTag: c.tag,
      deliveryTag: ++c.channel.delivered,
      redelivered: false,
      exchange: "",
      routingKey: c.queue.name,
    });
    if (c.noAck) c.channel.ackedThrough = c.channel.delivered;
    this.send(Buffer.concat([m, contentFrames(c.channel.id, body)]));
    this.flush();
  }
}

function consumerOf(ch: ChannelState, queue: Queue, tag: string, noAck: boolean): Consumer {
  const method = methodFrame(ch.id, {
    name: "basic.deliver",
    consumerTag: tag,
    deliveryTag: 0,
    redelivered: false,
    exchange: "",
    routingKey: queue.name,
  });
  const template = Buffer.concat([method, contentFrames(ch.id, Buffer.alloc(queue.bodySize, "x"))]);
  // frame header (7) + class/method ids (4) + consumer tag shortstr (1 + length): the tag's u64.
  return { tag, channel: ch, queue, noAck, template, tagOffset: 7 + 4 + 1 + Buffer.byteLength(tag) };
}

const port = Number(process.argv[2] ?? 0);
const server = net.createServer((socket) => void new Session(socket));
server.listen(port, "127.0.0.1", () => {
  const a = server.address();
  process.stdout.write(`listening ${typeof a === "object" && a ? a.port : port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
