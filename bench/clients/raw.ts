/**
 * The raw-socket yardstick: a handshake written by hand (no client library, not warren's
 * codec), then frames built by hand written straight to the socket.
 * - publish: the same pre-encoded basic.publish + header + body frames in 64 KiB blocks,
 *   pausing only for 'drain'. Nothing a client can do is cheaper, so its throughput is the
 *   ceiling for publish.
 * - send/subscribe (latency): one write per message; a noAck basic.consume whose deliveries are
 *   cut out of the socket's chunks with no decoding beyond the frame header. Its latency is the
 *   floor this machine and broker allow: the rest is client overhead.
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
const shortstr = (s: string) => Buffer.concat([u8(Buffer.byteLength(s)), Buffer.from(s)]);
const longstr = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const method = (channel: number, classId: number, methodId: number, ...args: Buffer[]) => frame(1, channel, Buffer.concat([u16(classId), u16(methodId), ...args]));

/** method + header + body frames of one publish (to the default exchange unless one is named). */
export function publishFrames(routingKey: string, body: Buffer, frameMax: number, exchange = ""): Buffer {
  const parts = [method(1, 60, 40, u16(0), shortstr(exchange), shortstr(routingKey), u8(0))];
  const size = Buffer.alloc(8);
  size.writeUInt32BE(Math.floor(body.length / 2 ** 32), 0);
  size.writeUInt32BE(body.length >>> 0, 4);
  parts.push(frame(2, 1, Buffer.concat([u16(60), u16(0), size, u16(0)])));
  for (let off = 0; off < body.length; off += frameMax - 8) parts.push(frame(3, 1, body.subarray(off, Math.min(body.length, off + frameMax - 8))));
  return Buffer.concat(parts);
}

const CHANNEL_OPEN_OK = 0x0014000b;
const BASIC_CONSUME_OK = 0x003c0015;

export async function createRaw(opts: ConnectOpts): Promise<BenchClient> {
  const url = new URL(opts.url);
  const socket = net.connect({ host: url.hostname, port: Number(url.port || 5672) });
  if (opts.noDelay !== undefined) socket.setNoDelay(opts.noDelay);
  await once(socket, "connect");
  let frameMax = 131072;
  let failure: Error | undefined;
  /** Resolves the wait for the method id it names (channel.open-ok, basic.consume-ok). */
  let awaiting: { id: number; resolve: () => void; reject: (e: Error) => void } | undefined;
  const expect = (id: number) => new Promise<void>((resolve, reject) => (awaiting = { id, resolve, reject }));
  let onBody: ((body: Buffer) => void) | undefined;
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
      awaiting.resolve();
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
      const p = buf.subarray(off + 7, off + 7 + size);
      off += size + 8;
      if (type === 1) onMethod(p);
      else if (type === 3) onBody?.(p); // bodies of one frame each: the latency messages are 16 B
    }
    rest = off < buf.length ? buf.subarray(off) : undefined;
  });
  socket.on("error", (e) => awaiting?.reject(e));
  const opened = expect(CHANNEL_OPEN_OK);
  socket.write(Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])); // "AMQP" 0 0 9 1
  await opened;
  const unsupported = () => Promise.reject(new Error("raw socket: publish and latency only"));
  return {
    name: "raw",
    async publish(queue, body, n) {
      const one = publishFrames(queue, body, frameMax);
      const perBlock = Math.max(1, Math.floor(65536 / one.length));
      const block = Buffer.concat(Array.from({ length: perBlock }, () => one));
      let left = n;
      while (left > 0) {
        if (failure) throw failure;
        const k = Math.min(perBlock, left);
        const ok = socket.write(k === perBlock ? block : block.subarray(0, k * one.length));
        left -= k;
        if (!ok) await once(socket, "drain");
      }
    },
    publishConfirmed: unsupported,
    naive: unsupported,
    consume: unsupported,
    async subscribe(queue, onMessage) {
      onBody = onMessage;
      const ok = expect(BASIC_CONSUME_OK);
      // basic.consume: reserved, queue, consumer tag (server-made), bits no-local|no-ack(2)|exclusive|no-wait, arguments
      socket.write(method(1, 60, 20, u16(0), shortstr(queue), shortstr(""), u8(0b10), u32(0)));
      await ok;
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
