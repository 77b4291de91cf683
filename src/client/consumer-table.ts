/**
 * A channel's consumers by consumer tag, and the few it cancelled lately.
 *
 * A delivery for a consumer that is gone (cancelled by us or by the broker, the cancel and the
 * delivery crossing on the wire) must not sit unacked until the channel closes: the table
 * remembers the last REMEMBERED_CANCELS tags, so that such a delivery goes back to the queue.
 * Bounded: a long-lived channel that consumes and cancels forever keeps no more than these.
 */
import type { MethodOf } from "../protocol/methods.js";
import type { FieldTable } from "../protocol/table.js";
import type { ConsumeOptions, ConsumerSink } from "./message-stream.js";
import type { AmqpError } from "./errors.js";
import type { StreamPosition } from "./topology.js";

const REMEMBERED_CANCELS = 16;

export class ConsumerTable {
  private readonly sinks = new Map<string, ConsumerSink>();
  /** Tags of consumers that ended lately -> their noAck. */
  private readonly cancelled = new Map<string, boolean>();
  /** Consumers that ended while a handler of theirs ran, until it finishes. */
  private readonly retired = new Set<ConsumerSink>();

  get size(): number {
    return this.sinks.size;
  }

  /** How many ended consumers are remembered (at most REMEMBERED_CANCELS). */
  get remembered(): number {
    return this.cancelled.size;
  }

  get(tag: string): ConsumerSink | undefined {
    return this.sinks.get(tag);
  }

  add(tag: string, sink: ConsumerSink): void {
    this.sinks.set(tag, sink);
  }

  /** Whether a delivery for `tag`, which has no consumer, must be given back: a consumer that ended lately and acks. */
  owesBack(tag: string): boolean {
    return this.cancelled.get(tag) === false;
  }

  /**
   * The consumer ended (cancel-ok, or a basic.cancel from the broker): take it out and remember
   * it; while its handlers still run, a close of the channel still waits for them.
   */
  remove(tag: string): ConsumerSink | undefined {
    const sink = this.sinks.get(tag);
    if (sink === undefined) return undefined;
    this.sinks.delete(tag);
    this.cancelled.delete(tag);
    this.cancelled.set(tag, sink.noAck);
    if (this.cancelled.size > REMEMBERED_CANCELS) this.cancelled.delete(this.cancelled.keys().next().value!);
    this.pruneRetired();
    if (sink.busy === true) this.retired.add(sink);
    return sink;
  }

  /** Every consumer, and every ended one whose handlers still run. */
  all(): ConsumerSink[] {
    this.pruneRetired();
    return [...this.sinks.values(), ...this.retired];
  }

  /** Whether a handler runs, of a consumer or of one that ended. */
  get busy(): boolean {
    return this.all().some((sink) => sink.busy === true);
  }

  /** Deliveries waiting in the consumers' buffers, and handlers running (of ended consumers too). */
  load(): { buffered: number; running: number } {
    let buffered = 0;
    let running = 0;
    for (const sink of this.all()) {
      buffered += sink.buffered ?? 0;
      running += sink.running ?? 0;
    }
    return { buffered, running };
  }

  /** The consumers by tag (those a close cancels first). */
  tags(): string[] {
    return [...this.sinks.keys()];
  }

  /** The channel or connection begins to close: no delivery reaches user code any more. */
  stopAll(): void {
    for (const sink of this.sinks.values()) sink.stop?.();
  }

  /** The channel closed: every consumer ends, with `reason` unless the client closed it. */
  endAll(reason: AmqpError | undefined): void {
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    this.retired.clear(); // nothing they settle could be sent now
    for (const sink of sinks) sink.end(reason);
  }

  private pruneRetired(): void {
    for (const sink of this.retired) if (sink.busy !== true) this.retired.delete(sink);
  }

  /** The connection was lost and will be recovered: consumers stay, to be started again. */
  suspendAll(): void {
    this.cancelled.clear();
    for (const sink of this.sinks.values()) sink.suspend?.();
  }

  forgetCancelled(): void {
    this.cancelled.clear();
  }
}

/** basic.consume for `queue` with these options, as the user starts it and as recovery restarts it. */
export function consumeMethod(queue: string, consumerTag: string, o: ConsumeOptions): MethodOf<"basic.consume"> {
  return {
    name: "basic.consume",
    queue,
    consumerTag,
    noLocal: o.noLocal ?? false,
    noAck: o.noAck ?? false,
    exclusive: o.exclusive ?? false,
    noWait: false,
    arguments: (o.arguments as FieldTable | undefined) ?? {},
  };
}

/** Stream consumers' positions, by the sink that consumes: the same sink started again resumes where it was. */
const positions = new WeakMap<ConsumerSink, StreamPosition>();

/** The position of `sink` as a stream consumer (started with `x-stream-offset`); undefined for any other consumer. */
export function streamPosition(sink: ConsumerSink, options: ConsumeOptions): StreamPosition | undefined {
  if (options.arguments?.["x-stream-offset"] === undefined) return undefined;
  let p = positions.get(sink);
  if (p === undefined) positions.set(sink, (p = { offset: undefined }));
  return p;
}

/** A stream consumer: each delivery's `x-stream-offset` header is kept in its position (topology.ts StreamPosition). */
export function trackStreamOffset(sink: ConsumerSink, position: StreamPosition): ConsumerSink {
  return {
    noAck: sink.noAck,
    deliver: (msg) => {
      const offset = msg.properties.headers?.["x-stream-offset"];
      if (typeof offset === "number" || typeof offset === "bigint") position.offset = offset;
      sink.deliver(msg);
    },
    end: (err) => sink.end(err),
    suspend: () => sink.suspend?.(),
    stop: () => sink.stop?.(),
    frame: sink.frame,
    closing: (closed) => sink.closing?.(closed),
    get busy() {
      return sink.busy === true;
    },
    get buffered() {
      return sink.buffered ?? 0;
    },
    get running() {
      return sink.running ?? 0;
    },
    drain: (timeout) => sink.drain?.(timeout) ?? Promise.resolve(),
  };
}
