/**
 * Consumers. The callback form calls a function per message; the iterator form
 * (`for await (const msg of ch.consume(q))`) buffers deliveries until the loop asks for them,
 * and `break` cancels the consumer.
 *
 * The iterator never buffers without bound: with acks, the broker sends at most the prefetch
 * count of unacked messages; with noAck there is no such limit, so past `highWaterMark`
 * buffered messages the connection stops reading its socket (TCP backpressure to the broker)
 * until the loop catches up.
 */
import { Queue } from "./queue.js";
import { processTrace, type ProcessContext } from "./diagnostics.js";
import type { AmqpError } from "./errors.js";
import type { Message } from "./message.js";
import type { ResubscribeOptions } from "./resubscribe.js";

/** Options of Channel.consume(), for the callback form and the iterator form (each option says which). */
export interface ConsumeOptions {
  noAck?: boolean;
  exclusive?: boolean;
  noLocal?: boolean;
  /** Our own consumer tag; default: the broker makes one. */
  consumerTag?: string;
  /** x-priority, x-stream-offset, ... */
  arguments?: Record<string, unknown>;
  /**
   * How many deliveries may wait (in the iterator's buffer, or for a free handler) before the
   * connection stops reading its socket, until they are down to half (default 1000). It bounds
   * memory where the broker does not: with noAck, or with no prefetch.
   */
  highWaterMark?: number;
  /** Aborting cancels the consumer (the iterator's loop then ends). */
  signal?: AbortSignal;
  /**
   * Callback only: the consumer ended without this client asking. The broker cancelled it
   * (ConsumerCancelledError: its queue was deleted), or its channel or connection closed
   * (with that close error, e.g. ConsumerTimeoutError when a delivery stayed unacked too long).
   */
  onCancel?: (err: AmqpError) => void;
  /**
   * Callback only: how many handlers run at once (default 1). A handler is running until it
   * returns, or until the promise it returns settles; later deliveries wait in order.
   */
  concurrency?: number;
  /**
   * Callback only: "auto" acks a delivery once its handler returns or resolves, and rejects it
   * (basic.reject) once the handler throws or rejects (see `requeue`): a failed delivery, which a
   * quorum queue counts toward its x-delivery-limit on every RabbitMQ version. "manual" (the
   * default) leaves it to you.
   */
  settle?: "manual" | "auto";
  /**
   * With settle "auto": whether a delivery whose handler failed is requeued. Default: requeued
   * once, then not (a redelivered message that fails again is dead-lettered, or dropped when its
   * queue has no dead-letter exchange).
   */
  requeue?: boolean | ((err: unknown, msg: Message) => boolean);
  /**
   * With settle "auto": a failed delivery goes here instead of being rejected, and the handler's
   * run lasts until what it returns settles: a RetryTopology (declareRetryTopology), which
   * retries it after a delay and parks it after the last attempt.
   */
  retry?: {
    /** Settle a delivery whose handler failed (reject it to a retry queue, or park it). */
    failed(msg: Message): unknown;
  };
  /**
   * Callback only: when the broker cancels the consumer (its queue deleted, its quorum queue's
   * node lost, a consumer timeout), consume again with backoff on the same channel; when its
   * channel is closed under it (404, 406), on a new channel of the connection (see
   * consumer.ts). The consumer emits "cancelled", then "resubscribed", or
   * "resubscribeFailed" (and onCancel hears it) when it gives up. Off by default.
   */
  resubscribe?: boolean | ResubscribeOptions;
  /**
   * Callback only, with acks: the consumer timeout that applies (the broker's consumer_timeout,
   * default 30 minutes, or the queue's x-consumer-timeout), in ms. A delivery still unsettled at
   * `warnAt` of it (default 0.8) is reported once by the channel's "consumerTimeoutWarning" event
   * (a process warning without a listener), before the broker acts on it.
   */
  consumerTimeout?: number;
  warnAt?: number;
}

/** @internal What the channel needs from a consumer (MessageStream fits it structurally). */
export interface ConsumerSink {
  noAck: boolean;
  deliver(msg: Message): void;
  /** The consumer ended: cancelled by us (err undefined) or the broker, or its channel closed. */
  end(err: AmqpError | undefined): void;
  /** The connection was lost and will be recovered: the consumer is started again afterwards. */
  suspend?(): void;
  /** Its channel or connection begins to close: no delivery reaches user code any more. */
  stop?(): void;
  /** A handler is running (callback consumers, handler.ts). */
  readonly busy?: boolean;
  /** Deliveries waiting for a handler or the next step of a loop (stats.ts). */
  readonly buffered?: number;
  /** Handlers running now (callback consumers). */
  readonly running?: number;
  /** Resolves once no handler runs (at most `timeout` ms). */
  drain?(timeout: number): Promise<void>;
  /** How its handlers' frames read in an async stack trace (callback consumers, handler.ts callingSinks). */
  readonly frame?: string | undefined;
  /** One of its handlers awaits a close it called, until `closed` settles: drains do not wait for it. */
  closing?(closed: Promise<unknown>): void;
}

/** @internal */
export interface StreamHost {
  startConsumer(queue: string, sink: ConsumerSink, options: ConsumeOptions): Promise<string>;
  cancel(consumerTag: string): Promise<void>;
  /** Give a delivery back to the broker (basic.nack with requeue: a return, not a failure; nothing for a stream's). */
  giveBack(msgs: readonly Message[]): void;
  /** What a traced loop body carries (diagnostics.ts, warren:process). */
  processContext(queue: string, msg: Message): ProcessContext;
  pauseReading(): void;
  resumeReading(): void;
}

interface Waiter {
  resolve: (r: IteratorResult<Message>) => void;
  reject: (e: unknown) => void;
}

/**
 * The iterator form of a consumer. It starts consuming at once; errors (a missing queue, a
 * closed channel) surface from the next `next()`, once; later calls return done.
 *
 * Leaving the loop (`break`, `return`, a throw in its body, an aborted signal) cancels the
 * consumer and gives every delivery still buffered back to the broker (basic.nack with
 * requeue, which RabbitMQ 4.3 does not count as a failed delivery; in noAck mode there is nothing to give back, and a stream's messages stay in the
 * stream anyway). Deliveries that cross the cancel on the wire go back the same way.
 */
export class MessageStream implements AsyncIterableIterator<Message> {
  readonly noAck: boolean;
  /** Resolves to the consumer tag once the broker has confirmed the consumer. */
  readonly consumerTag: Promise<string>;
  private readonly host: StreamHost;
  private readonly buffer = new Queue<Message>();
  /** next() calls waiting for a delivery, in order; only while the buffer is empty. */
  private readonly waiters = new Queue<Waiter>();
  private done = false;
  /** The loop was left: what arrives now goes back to the broker. */
  private left = false;
  /**
   * Its channel or connection began to close, and it acks: nothing more is handed out, and what
   * is buffered goes back when the consumer ends (a noAck loop still gets what it was sent).
   */
  private stopped = false;
  private error: unknown;
  private pausing = false;
  private readonly highWaterMark: number;
  private tag: string | undefined;
  private readonly queue: string;
  /** The loop body now running on a message handed out, when traced. */
  private step: ProcessContext | undefined;

  /** @internal */
  constructor(host: StreamHost, queue: string, options: ConsumeOptions) {
    const hwm = options.highWaterMark ?? 1000;
    // 0 would pause the socket for good (it resumes below half the mark); NaN would remove the bound.
    if (!Number.isSafeInteger(hwm) || hwm < 1)
      throw new RangeError(`consume: highWaterMark must be a positive integer, got ${String(hwm)}`);
    this.highWaterMark = hwm;
    this.host = host;
    this.queue = queue;
    this.noAck = options.noAck ?? false;
    this.consumerTag = host.startConsumer(queue, this, options).then((tag) => (this.tag = tag));
    // The failure is handed to next(); don't let the tag promise be an unhandled rejection.
    this.consumerTag.catch((e: unknown) => this.end(e as AmqpError));
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) void this.return();
      else signal.addEventListener("abort", () => void this.return(), { once: true });
    }
  }

  /** The stream is its own iterator: `for await (const msg of ch.consume(queue))`. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** @internal Deliveries buffered, not yet handed out (stats.ts). */
  get buffered(): number {
    return this.buffer.length;
  }

  /** @internal */
  deliver(msg: Message): void {
    if (this.left) {
      if (!this.noAck) this.host.giveBack([msg]);
      return;
    }
    if (this.done) return;
    if (this.waiters.length > 0) {
      this.waiters.shift()!.resolve({ value: this.handOut(msg), done: false });
      return;
    }
    this.buffer.push(msg);
    if (!this.pausing && !this.stopped && this.buffer.length >= this.highWaterMark) {
      this.pausing = true;
      this.host.pauseReading();
    }
  }

  /** @internal */
  end(err: AmqpError | undefined): void {
    if (this.done) return;
    this.done = true;
    this.error = err;
    this.stopPausing();
    if (this.stopped && !this.noAck) this.host.giveBack(this.takeBuffered());
    // Waiters exist only while the buffer is empty: the first hears the error, the rest done.
    for (const w of this.waiters.drain()) {
      const e = this.takeError();
      if (e !== undefined) w.reject(e);
      else w.resolve({ value: undefined, done: true });
    }
  }

  /**
   * @internal The connection was lost: let go of the socket, and drop buffered deliveries that
   * need an ack (the broker has requeued them, and an ack of them could no longer be sent).
   */
  suspend(): void {
    this.stopPausing();
    if (!this.noAck) this.takeBuffered();
  }

  /** @internal The channel or connection begins to close: with acks, the loop gets nothing more (it ends). */
  stop(): void {
    this.stopPausing(); // the close must read its replies
    if (this.noAck) return;
    this.stopped = true;
    for (const w of this.waiters.drain()) w.resolve({ value: undefined, done: true });
  }

  /** Empties the buffer and hands back what was in it and not yet read. */
  private takeBuffered(): Message[] {
    return this.buffer.drain();
  }

  private takeError(): unknown {
    const e = this.error;
    this.error = undefined;
    return e;
  }

  private stopPausing(): void {
    if (this.pausing) {
      this.pausing = false;
      this.host.resumeReading();
    }
  }

  /** A message goes to the loop body: with tracing, its step begins (and ends at the next step). */
  private handOut(msg: Message): Message {
    if (processTrace.hasSubscribers)
      processTrace.start.publish((this.step = this.host.processContext(this.queue, msg)));
    return msg;
  }

  private stepDone(): void {
    if (this.step === undefined) return;
    processTrace.end.publish(this.step);
    this.step = undefined;
  }

  /** The next delivery (what `for await` calls); done once the consumer ends. */
  next(): Promise<IteratorResult<Message>> {
    this.stepDone();
    if (this.buffer.length > 0 && !this.stopped) {
      const msg = this.buffer.shift()!;
      if (this.pausing && this.buffer.length < this.highWaterMark / 2) this.stopPausing();
      return Promise.resolve({ value: this.handOut(msg), done: false });
    }
    if (this.done || this.stopped) {
      const e = this.takeError(); // report once, then plain done
      return e !== undefined ? Promise.reject(e) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Leave the loop (`break`): cancel the consumer, and give what is still buffered back to the broker. */
  async return(): Promise<IteratorResult<Message>> {
    this.stepDone();
    if (!this.left) {
      this.left = true;
      this.stopPausing();
      const buffered = this.takeBuffered();
      this.end(undefined);
      const tag = this.tag ?? (await this.consumerTag.catch(() => undefined));
      if (tag !== undefined) await this.host.cancel(tag).catch(() => undefined);
      // After cancel-ok, so the broker cannot hand them straight back to this consumer.
      if (!this.noAck) this.host.giveBack(buffered);
    }
    return { value: undefined, done: true };
  }

  /** Cancel the consumer; the loop ends after the messages already buffered. */
  async cancel(): Promise<void> {
    const tag = await this.consumerTag;
    await this.host.cancel(tag);
  }
}
