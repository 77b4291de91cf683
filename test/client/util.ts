/**
 * Shared bits of the conformance tests: connections that are closed after each test, and a
 * bounded poll for broker-side state that settles asynchronously (never a timing assertion:
 * only "eventually, within the test timeout").
 */
import diagnostics from "node:diagnostics_channel";
import { afterEach } from "vitest";
import {
  connect,
  type Channel,
  type Connection,
  type ConnectOptions,
  type FrameMessage,
  type Message,
} from "../../src/index.js";
import { getBrokerUrl } from "../helpers/broker.js";

/**
 * Call once at the top of a test file: `const open = useConnections();` then
 * `const conn = await open()`. Every connection (and so every channel) opened through it is
 * closed after each test.
 */
export function useConnections(): (options?: Omit<ConnectOptions, "url">) => Promise<Connection> {
  const opened: Connection[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close().catch(() => undefined)));
  });
  return async (options = {}) => {
    const conn = await connect({ url: await getBrokerUrl(), ...options });
    opened.push(conn);
    return conn;
  };
}

/**
 * Call once at the top of a test file, after useConnections: durable queues to delete after each
 * test, on a connection of the cleanup's own (the test's may be closed by then). Returns the
 * function that registers a queue.
 */
export function useDurableQueues(open: () => Promise<Connection>): (...names: string[]) => void {
  const queues: string[] = [];
  afterEach(async () => {
    if (queues.length === 0) return;
    const ch = await (await open()).openChannel();
    for (const name of queues.splice(0)) await ch.queueDelete(name);
  });
  return (...names) => void queues.push(...names);
}

/** Poll `check` until it returns a value other than undefined/false, or give up after `attempts`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  attempts = 200,
  everyMs = 25,
): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** The broker's current ready-message and consumer counts of a queue (a passive declare). */
export async function queueCounts(
  ch: Channel,
  queue: string,
): Promise<{ messageCount: number; consumerCount: number }> {
  const r = await ch.queueDeclare(queue, { passive: true });
  return { messageCount: r.messageCount, consumerCount: r.consumerCount };
}

/** Wait until the queue holds exactly `n` ready messages. */
export function untilReady(ch: Channel, queue: string, n: number): Promise<true> {
  return eventually(
    async () => (await queueCounts(ch, queue)).messageCount === n || undefined,
    `${n} ready messages in ${queue}`,
  );
}

/** Resolves with the first `n` messages a callback consumer receives. */
export function take(n: number): { onMessage: (m: Message) => void; done: Promise<Message[]>; received: Message[] } {
  const received: Message[] = [];
  let resolve!: (m: Message[]) => void;
  const done = new Promise<Message[]>((r) => (resolve = r));
  if (n === 0) resolve(received);
  return {
    received,
    done,
    onMessage: (m) => {
      received.push(m);
      if (received.length === n) resolve(received);
    },
  };
}

/** The settled outcome of a promise, without a throw: for asserting on rejections in bulk. */
export async function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Whether the broker behind `conn` is RabbitMQ `major.minor` or later (from connection.start). */
export function brokerAtLeast(conn: Connection, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(String(conn.serverProperties["version"] ?? ""));
  if (m === null) throw new Error(`the broker's version is not known: ${String(conn.serverProperties["version"])}`);
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/**
 * Publishes on the wire of `conn`, read off the frame channels: how many were written, and the
 * most ever written and not yet confirmed (acks with multiple counted as the range they cover).
 */
export function watchConfirmWindow(conn: Connection): {
  readonly written: number;
  readonly most: number;
  stop(): void;
} {
  let written = 0;
  let confirmed = 0;
  let most = 0;
  const out = (m: unknown) => {
    const { connection, frame } = m as FrameMessage;
    if (connection === conn && frame.type === 1 && frame.method.name === "basic.publish")
      most = Math.max(most, ++written - confirmed);
  };
  const seen = new Set<number>();
  const inbound = (m: unknown) => {
    const { connection, frame } = m as FrameMessage;
    if (connection !== conn || frame.type !== 1 || frame.method.name !== "basic.ack") return;
    const { deliveryTag, multiple } = frame.method;
    for (let t = multiple ? confirmed + 1 : deliveryTag; t <= deliveryTag; t++) seen.add(t);
    while (seen.has(confirmed + 1)) seen.delete(++confirmed);
  };
  diagnostics.subscribe("warren:frame:out", out);
  diagnostics.subscribe("warren:frame:in", inbound);
  return {
    get written() {
      return written;
    },
    get most() {
      return most;
    },
    stop() {
      diagnostics.unsubscribe("warren:frame:out", out);
      diagnostics.unsubscribe("warren:frame:in", inbound);
    },
  };
}
