/**
 * The raw-socket yardstick: a handshake written by hand (no client library, not warren's
 * codec), then frames built by hand written straight to the socket.
 * - publish: the same pre-encoded basic.publish + header + body frames in 64 KiB blocks,
 *   pausing only for 'drain'.
 * - publish with confirms: the same blocks, never more than the window unconfirmed; the acks are
 *   counted as they are cut out of the chunks and the window refilled once per chunk read.
 * - consume: basic.qos and basic.consume on a channel of their own; deliveries are counted from
 *   the method frame's id alone and, with manual acks, all those of one chunk read are acked by
 *   one basic.ack with multiple set (the fewest bytes a consumer can ack with).
 * - naive: the publish blocks written all at once, never waiting for 'drain' (memory-naive).
 * - send/subscribe (latency): one write per message; a noAck basic.consume whose deliveries are
 *   cut out of the socket's chunks with no decoding beyond the frame header. Its latency is the
 *   floor this machine and broker allow: the rest is client overhead.
 *
 * Nothing a client can do is cheaper than any of these, so they are the ceiling (throughput)
 * and the floor (latency, memory) of each scenario.
 */
import net from "node:net";
import { once } from "node:events";
import type { BenchClient, ConnectOpts } from "./types.js";

/** One frame: type, channel, size, payload, frame-end (spec 4.2.3). */
export function frame(type: number, channel: number, payload: Uint8Array): Buffer {
  const f = Buffer.alloc(payload.length + 8);
  f[0] = type;
  f.writeUInt16BE(channel, 1);
  f.writeUInt32BE(payload.length, 3);
  f.set(payload, 7);
  f[f.length - 1] = 0xce;
  return f;
}
const u8 = (v: number) => Buffer.from([v]);
const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const u64 = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(v / 2 ** 32), 0);
  b.writeUInt32BE(v >>> 0, 4);
  return b;
};
const shortstr = (s: string) => Buffer.concat([u8(Buffer.byteLength(s)), Buffer.from(s)]);
const longstr = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const method = (channel: number, classId: number, methodId: number, ...args: Buffer[]) =>
  frame(1, channel, Buffer.concat([u16(classId), u16(methodId), ...args]));

/** method + header + body frames of one publish (to the default exchange unless one is named). */
export function publishFrames(routingKey: string, body: Buffer, frameMax: number, exchange = "", channel = 1): Buffer {
  const parts = [method(channel, 60, 40, u16(0), shortstr(exchange), shortstr(routingKey), u8(0))];
  parts.push(frame(2, channel, Buffer.concat([u16(60), u16(0), u64(body.length), u16(0)])));
  for (let off = 0; off < body.length; off += frameMax - 8)
    parts.push(frame(3, channel, body.subarray(off, Math.min(body.length, off + frameMax - 8))));
  return Buffer.concat(parts);
}

/** basic.consume: reserved, queue, consumer tag (server-made), bits no-local|no-ack|exclusive|no-wait, arguments. */
function consumeFrame(channel: number, queue: string, noAck: boolean): Buffer {
  return method(channel, 60, 20, u16(0), shortstr(queue), shortstr(""), u8(noAck ? 0b10 : 0), u32(0));
}

// class id << 16 | method id (spec 1.4): the methods the yardstick waits for or counts.
const CHANNEL_OPEN_OK = 0x0014000b;
const CHANNEL_CLOSE_OK = 0x00140029;
const BASIC_QOS_OK = 0x003c000b;
const BASIC_CONSUME_OK = 0x003c0015;
const BASIC_CANCEL_OK = 0x003c001f;
const BASIC_DELIVER = 0x003c003c;
const BASIC_ACK = 0x003c0050;
const BASIC_NACK = 0x003c0078;
const CONFIRM_SELECT_OK = 0x0055000b;

/** A longlong (spec 4.2.5.2) below 2^53: a delivery tag. */
function readTag(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 2 ** 32 + buf.readUInt32BE(at + 4);
}

export async function createRaw(opts: ConnectOpts): Promise<BenchClient> {
  const url = new URL(opts.url);
  const socket = net.connect({ host: url.hostname, port: Number(url.port || 5672) });
  if (opts.noDelay !== undefined) socket.setNoDelay(opts.noDelay);
  await once(socket, "connect");
  let frameMax = 131072;
  let failure: Error | undefined;
  /** Resolves the wait for the method id it names (channel.open-ok, basic.consume-ok) with its payload. */
  let awaiting: { id: number; resolve: (payload: Buffer) => void; reject: (e: Error) => void } | undefined;
  const expect = (id: number) => new Promise<Buffer>((resolve, reject) => (awaiting = { id, resolve, reject }));
  /** Writes one synchronous method and waits for its reply. */
  const call = (frames: Buffer, replyId: number) => {
    const reply = expect(replyId);
    socket.write(frames);
    return reply;
  };
  let onBody: ((body: Buffer) => void) | undefined;
  /** basic.deliver (its delivery tag), basic.ack and basic.nack, counted without a subarray each. */
  let onDeliver: ((tag: number) => void) | undefined;
  let onAck: ((tag: number, multiple: boolean, nack: boolean) => void) | undefined;
  /** After each chunk read: where a consumer acks and a confirming publisher refills its window. */
  let onRead: (() => void) | undefined;
  let nextChannel = 2;
  const openChannel = async () => {
    const ch = nextChannel++;
    await call(method(ch, 20, 10, shortstr("")), CHANNEL_OPEN_OK);
    return ch;
  };
  const closeChannel = (ch: number) =>
    call(method(ch, 20, 40, u16(200), shortstr(""), u16(0), u16(0)), CHANNEL_CLOSE_OK);
  let template: { key: string; frames: Buffer } | undefined;

  const onMethod = (p: Buffer) => {
    const id = p.readUInt32BE(0);
    if (id === 0x000a000a) {
      // connection.start -> start-ok: empty client properties, PLAIN
      const user = decodeURIComponent(url.username || "guest");
      const pass = decodeURIComponent(url.password || "guest");
      socket.write(method(0, 10, 11, u32(0), shortstr("PLAIN"), longstr(`\0${user}\0${pass}`), shortstr("en_US")));
    } else if (id === 0x000a001e) {
      // connection.tune -> tune-ok (no heartbeats), open
      const serverFrameMax = p.readUInt32BE(6);
      frameMax = serverFrameMax === 0 ? 131072 : Math.min(131072, serverFrameMax);
      socket.write(method(0, 10, 31, u16(p.readUInt16BE(4)), u32(frameMax), u16(0)));
      const vhost = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : "/";
      socket.write(method(0, 10, 40, shortstr(vhost), shortstr(""), u8(0)));
    } else if (id === 0x000a0029) {
      socket.write(method(1, 20, 10, shortstr(""))); // connection.open-ok -> channel.open
    } else if (id === 0x000a0032 || id === 0x00140028) {
      failure = new Error(`raw: the broker closed: ${p.subarray(7, 7 + p[6]!).toString()}`);
      awaiting?.reject(failure);
    } else if (id === awaiting?.id) {
      awaiting.resolve(p);
    }
  };

  // Frames are cut out of the chunks as they come; a partial frame waits for the next chunk.
  let rest: Buffer | undefined;
  socket.on("data", (chunk: Buffer) => {
    let buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 8) {
      const size = buf.readUInt32BE(off + 3);
      if (buf.length - off < size + 8) break;
      const type = buf[off];
      const at = off + 7;
      off += size + 8;
      if (type === 1) {
        const id = buf.readUInt32BE(at);
        if (id === BASIC_DELIVER && onDeliver)
          onDeliver(readTag(buf, at + 5 + buf[at + 4]!)); // after the consumer tag
        else if ((id === BASIC_ACK || id === BASIC_NACK) && onAck)
          onAck(readTag(buf, at + 4), (buf[at + 12]! & 1) === 1, id === BASIC_NACK);
        else onMethod(buf.subarray(at, at + size));
      } else if (type === 3) onBody?.(buf.subarray(at, at + size)); // bodies of one frame each: the latency messages are 16 B
    }
    rest = off < buf.length ? buf.subarray(off) : undefined;
    onRead?.();
  });
  socket.on("error", (e) => awaiting?.reject(e));
  const opened = expect(CHANNEL_OPEN_OK);
  socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])); // "AMQP" 0 0 9 1
  await opened;
  /**
   * Publishes in blocks of up to 64 KiB (at most `most` publishes each): write(k) writes k of
   * them at once, k <= perBlock, and returns socket.write's answer.
   */
  const blocks = (queue: string, body: Buffer, channel: number, most: number) => {
    const one = publishFrames(queue, body, frameMax, "", channel);
    const perBlock = Math.max(1, Math.min(most, Math.floor(65536 / one.length)));
    const all = Buffer.concat(Array.from({ length: perBlock }, () => one));
    return { perBlock, write: (k: number) => socket.write(k === perBlock ? all : all.subarray(0, k * one.length)) };
  };
  /** n publishes in 64 KiB blocks; waiting for 'drain' between blocks, or (naive) never. */
  const writeAll = async (queue: string, body: Buffer, n: number, flowControl: boolean) => {
    const { perBlock, write } = blocks(queue, body, 1, Infinity);
    let left = n;
    while (left > 0) {
      if (failure) throw failure;
      const k = Math.min(perBlock, left);
      const ok = write(k);
      left -= k;
      if (!ok && flowControl) await once(socket, "drain");
    }
    if (socket.writableNeedDrain) await once(socket, "drain");
  };
  const confirmed = async (queue: string, body: Buffer, n: number, window: number): Promise<void> => {
    const ch = await openChannel();
    await call(method(ch, 85, 10, u8(0)), CONFIRM_SELECT_OK);
    const { perBlock, write } = blocks(queue, body, ch, window);
    let sent = 0;
    let confirmed = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        const refill = () => {
          while (sent < n && sent - confirmed < window) {
            const k = Math.min(perBlock, n - sent, window - (sent - confirmed));
            write(k);
            sent += k;
          }
        };
        onAck = (tag, multiple, nack) => {
          if (nack) reject(new Error(`raw: the broker nacked publish ${tag}`));
          // Tags count from 1 on this channel (confirm.select); one queue confirms in order.
          confirmed = multiple ? tag : confirmed + 1;
        };
        onRead = () => {
          if (failure) reject(failure);
          else if (confirmed >= n) resolve();
          else refill();
        };
        refill();
      });
    } finally {
      onAck = undefined;
      onRead = undefined;
    }
    await closeChannel(ch);
  };
  return {
    name: "raw",
    async publish(queue, body, n) {
      await writeAll(queue, body, n, true);
    },
    // Frames, with no promise: the ceiling of both confirm scenarios.
    publishConfirmed: confirmed,
    publishConfirmedEach: confirmed,
    async naive(queue, body, n) {
      await writeAll(queue, body, n, false);
    },
    async consume(queue, n, { handling, prefetch }) {
      // No handler to run: every handling is a count, and an ack per read unless noAck.
      const noAck = handling.kind === "noack";
      const ch = await openChannel();
      await call(method(ch, 60, 10, u32(0), u16(prefetch), u8(0)), BASIC_QOS_OK);
      let got = 0;
      let last = 0;
      let acked = 0;
      let ok: Buffer;
      try {
        const all = new Promise<void>((resolve, reject) => {
          onDeliver = (tag) => {
            got++;
            last = tag;
          };
          onRead = () => {
            if (!noAck && last > acked) {
              socket.write(method(ch, 60, 80, u64(last), u8(1))); // basic.ack, multiple
              acked = last;
            }
            if (failure) reject(failure);
            else if (got >= n) resolve();
          };
        });
        ok = await call(consumeFrame(ch, queue, noAck), BASIC_CONSUME_OK);
        await all;
      } finally {
        onDeliver = undefined;
        onRead = undefined;
      }
      await call(method(ch, 60, 30, ok.subarray(4, 5 + ok[4]!), u8(0)), BASIC_CANCEL_OK); // the consumer tag, as consume-ok gave it
      await closeChannel(ch);
    },
    async subscribe(queue, onMessage) {
      onBody = onMessage;
      await call(consumeFrame(1, queue, true), BASIC_CONSUME_OK);
    },
    send(exchange, routingKey, body) {
      // The frames are built once per destination and body size; each message copies them and
      // puts its own body in place (the latency bodies are 16 B: one body frame, last).
      const key = `${exchange}\0${routingKey}\0${body.length}`;
      if (template?.key !== key) template = { key, frames: publishFrames(routingKey, body, frameMax, exchange) };
      const frames = template.frames;
      const out = Buffer.allocUnsafe(frames.length);
      frames.copy(out);
      body.copy(out, frames.length - 1 - body.length);
      socket.write(out);
    },
    async close() {
      socket.write(method(0, 10, 50, u16(200), shortstr("bye"), u16(0), u16(0)));
      socket.end();
      await once(socket, "close").catch(() => undefined);
    },
  };
}
