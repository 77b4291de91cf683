/**
 * What automatic recovery puts back, recorded as it is set up: the exchanges, queues and
 * bindings declared through a connection (Topology), and per channel its prefetch and consumers
 * (ChannelRecord). Pure data: nothing here talks to a broker; recovery.ts replays it.
 */
import { typed, type FieldTable } from "../protocol/table.js";
import type { ConsumeOptions } from "./message-stream.js";

// ---------------------------------------------------------------------------------------------
// what a channel had set up

/** A consumer as it was started, to start it again. */
export interface ConsumerRecord {
  queue: string;
  options: ConsumeOptions;
  /** The per-consumer prefetch (basic.qos global=false) in force when it was started. */
  prefetch: { count: number; size: number };
  /** A stream consumer's position (see StreamPosition). */
  stream?: StreamPosition | undefined;
}

/**
 * A stream consumer (started with `x-stream-offset`): the offset of the last message delivered
 * to it, from each delivery's `x-stream-offset` header. Started again, by recovery or by healing
 * (resubscribe), it resumes after that one instead of at its original offset, so it gets no
 * message twice and misses none.
 */
export interface StreamPosition {
  offset: number | bigint | undefined;
}

/** The basic.consume arguments that start a consumer (again): a stream consumer's resume after its last delivery. */
export function resumeArguments(
  args: Record<string, unknown> | undefined,
  stream: StreamPosition | undefined,
): Record<string, unknown> {
  const offset = stream?.offset;
  if (offset === undefined) return args ?? {};
  return { ...args, "x-stream-offset": typed("l", typeof offset === "bigint" ? offset + 1n : offset + 1) };
}

/** Per channel: prefetch and consumers, in the order they were set up. */
export class ChannelRecord {
  constructor(private readonly topology: Topology) {}

  /** The latest basic.qos global=false (applies to consumers started after it). */
  perConsumer = { count: 0, size: 0 };
  /** The latest basic.qos global=true, if any. */
  shared: { count: number; size: number } | undefined;
  readonly consumers = new Map<string, ConsumerRecord>();

  qos(count: number, size: number, global: boolean): void {
    if (global) this.shared = { count, size };
    else this.perConsumer = { count, size };
  }

  consumer(tag: string, queue: string, options: ConsumeOptions, stream: StreamPosition | undefined): ConsumerRecord {
    const record: ConsumerRecord = { queue, options, prefetch: this.perConsumer, stream };
    this.consumers.set(tag, record);
    this.topology.consumerAdded(queue);
    return record;
  }

  /** The consumer ended (cancelled by us or the broker). */
  drop(tag: string): void {
    const c = this.consumers.get(tag);
    if (c === undefined) return;
    this.consumers.delete(tag);
    this.topology.consumerRemoved(c.queue);
  }

  /** The channel closed: all its consumers ended. */
  clear(): void {
    for (const tag of [...this.consumers.keys()]) this.drop(tag);
  }
}

// ---------------------------------------------------------------------------------------------
// topology

interface ExchangeRecord {
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: FieldTable;
}
interface QueueRecord {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: FieldTable;
  /** Declared with "": the broker names it, so it is declared with "" again and may be renamed. */
  serverNamed: boolean;
}
interface BindingRecord {
  kind: "queue" | "exchange";
  destination: string;
  source: string;
  routingKey: string;
  arguments: FieldTable;
}

/** A stable key for a field table (bigint and Buffers included), to tell bindings apart. */
function tableKey(t: FieldTable): string {
  return JSON.stringify(t, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
}
function bindingKey(b: BindingRecord): string {
  return JSON.stringify([b.kind, b.destination, b.source, b.routingKey, tableKey(b.arguments)]);
}

/** The exchanges, queues and bindings declared through one connection, in order. */
export class Topology {
  readonly exchanges = new Map<string, ExchangeRecord>();
  readonly queues = new Map<string, QueueRecord>();
  readonly bindings = new Map<string, BindingRecord>();
  /** Consumers per queue, over every channel: an auto-delete queue is gone when its last one ends. */
  private readonly consumerCounts = new Map<string, number>();
  /** Old name -> new name of server-named queues, over the connection's life. */
  private readonly renames = new Map<string, string>();

  consumerAdded(queue: string): void {
    this.consumerCounts.set(queue, (this.consumerCounts.get(queue) ?? 0) + 1);
  }

  consumerRemoved(name: string): void {
    const queue = this.queueName(name);
    const n = (this.consumerCounts.get(queue) ?? 1) - 1;
    if (n > 0) {
      this.consumerCounts.set(queue, n);
      return;
    }
    this.consumerCounts.delete(queue);
    // The broker deletes an auto-delete queue once its last consumer is gone: so does the record,
    // or recovery would bring back a queue that nobody consumes and nothing will ever delete.
    if (this.queues.get(queue)?.autoDelete === true) this.queueDeleted(queue);
  }

  exchangeDeclared(name: string, r: ExchangeRecord): void {
    // The default exchange and amq.* always exist and may not be declared (403).
    if (name === "" || name.startsWith("amq.")) return;
    this.exchanges.set(name, r);
  }

  exchangeDeleted(name: string): void {
    this.exchanges.delete(name);
    for (const [k, b] of this.bindings)
      if (b.source === name || (b.kind === "exchange" && b.destination === name)) this.bindings.delete(k);
  }

  queueDeclared(asked: string, name: string, r: Omit<QueueRecord, "serverNamed">): void {
    this.queues.set(name, { ...r, serverNamed: asked === "" });
  }

  queueDeleted(name: string): void {
    this.queues.delete(name);
    for (const [k, b] of this.bindings) if (b.kind === "queue" && b.destination === name) this.bindings.delete(k);
  }

  bound(b: BindingRecord): void {
    this.bindings.set(bindingKey(b), b);
  }

  unbound(b: BindingRecord): void {
    this.bindings.delete(bindingKey(b));
  }

  /** The current name of a queue that may have been renamed by recovery (once or more). */
  queueName(name: string): string {
    let n = name;
    for (let next = this.renames.get(n); next !== undefined; next = this.renames.get(n)) n = next;
    return n;
  }

  /** A server-named queue came back as `to`: its record, bindings and consumer count follow. */
  rename(from: string, to: string): void {
    this.renames.set(from, to);
    const q = this.queues.get(from);
    this.queues.delete(from);
    if (q !== undefined) this.queues.set(to, q);
    const consumers = this.consumerCounts.get(from);
    this.consumerCounts.delete(from);
    if (consumers !== undefined) this.consumerCounts.set(to, consumers);
    for (const [k, b] of [...this.bindings]) {
      if (b.kind === "queue" && b.destination === from) {
        this.bindings.delete(k);
        this.bound({ ...b, destination: to });
      }
    }
  }
}
