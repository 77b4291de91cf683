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
import type { AmqpError } from "./errors.js";
import type { Message } from "./message.js";

export interface ConsumeOptions {
  noAck?: boolean;
  exclusive?: boolean;
  noLocal?: boolean;
  /** Our own consumer tag; default: the broker makes one. */
  consumerTag?: string;
  /** x-priority, x-stream-offset, ... */
  arguments?: Record<string, unknown>;
  /** Iterator only: how many messages may wait in the buffer before the socket is paused (default 1000). */
  highWaterMark?: number;
  /** Aborting cancels the consumer (the iterator's loop then ends). */
  signal?: AbortSignal;
  /** Callback only: the broker cancelled the consumer (its queue was deleted). */
  onCancel?: (err: AmqpError) => void;
}

/** A running consumer (callback form). */
export interface Consumer {
  readonly consumerTag: string;
  /** basic.cancel: no more deliveries once it resolves. */
  cancel(): Promise<void>;
}

/** @internal What the channel needs from a consumer (MessageStream fits it structurally). */
export interface ConsumerSink {
  noAck: boolean;
  deliver(msg: Message): void;
  /** The consumer ended: cancelled by us (err undefined) or the broker, or its channel closed. */
  end(err: AmqpError | undefined): void;
}

/** @internal */
export interface StreamHost {
  startConsumer(queue: string, sink: ConsumerSink, options: ConsumeOptions): Promise<string>;
  cancel(consumerTag: string): Promise<void>;
  holdReading(): void;
  releaseReading(): void;
}

/**
 * The iterator form of a consumer. It starts consuming at once; errors (a missing queue, a
 * closed channel) surface from the next `next()`.
 */
export class MessageStream implements AsyncIterableIterator<Message> {
  readonly noAck: boolean;
  /** Resolves to the consumer tag once the broker has confirmed the consumer. */
  readonly consumerTag: Promise<string>;
  private readonly host: StreamHost;
  private buffer: Message[] = [];
  private head = 0;
  private waiter: { resolve: (r: IteratorResult<Message>) => void; reject: (e: unknown) => void } | undefined;
  private done = false;
  private error: unknown;
  private holding = false;
  private readonly highWaterMark: number;
  private tag: string | undefined;

  /** @internal */
  constructor(host: StreamHost, queue: string, options: ConsumeOptions) {
    this.host = host;
    this.noAck = options.noAck ?? false;
    this.highWaterMark = options.highWaterMark ?? 1000;
    this.consumerTag = host.startConsumer(queue, this, options).then((tag) => (this.tag = tag));
    // The failure is handed to next(); don't let the tag promise be an unhandled rejection.
    this.consumerTag.catch((e: unknown) => this.end(e as AmqpError));
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) void this.return();
      else signal.addEventListener("abort", () => void this.return(), { once: true });
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** @internal */
  deliver(msg: Message): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: msg, done: false });
      return;
    }
    this.buffer.push(msg);
    if (!this.holding && this.buffer.length - this.head >= this.highWaterMark) {
      this.holding = true;
      this.host.holdReading();
    }
  }

  /** @internal */
  end(err: AmqpError | undefined): void {
    if (this.done) return;
    this.done = true;
    this.error = err;
    this.release();
    if (this.waiter && this.head >= this.buffer.length) {
      const w = this.waiter;
      this.waiter = undefined;
      if (err) w.reject(err);
      else w.resolve({ value: undefined, done: true });
    }
  }

  private release(): void {
    if (this.holding) {
      this.holding = false;
      this.host.releaseReading();
    }
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.head < this.buffer.length) {
      const msg = this.buffer[this.head++]!;
      if (this.head === this.buffer.length) {
        this.buffer = [];
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.buffer.length) {
        this.buffer = this.buffer.slice(this.head);
        this.head = 0;
      }
      if (this.holding && this.buffer.length - this.head < this.highWaterMark / 2) this.release();
      return Promise.resolve({ value: msg, done: false });
    }
    if (this.done) {
      if (this.error) {
        const e = this.error;
        this.error = undefined; // report once, then plain done
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** `break` out of a for-await: cancel the consumer. Unacked buffered messages go back to the queue when the channel closes, or can be acked by the caller. */
  async return(): Promise<IteratorResult<Message>> {
    if (!this.done) {
      this.done = true;
      this.release();
      const tag = this.tag ?? (await this.consumerTag.catch(() => undefined));
      if (tag !== undefined) await this.host.cancel(tag).catch(() => undefined);
    }
    if (this.waiter) {
      this.waiter.resolve({ value: undefined, done: true });
      this.waiter = undefined;
    }
    return { value: undefined, done: true };
  }

  /** Cancel the consumer; the loop ends after the messages already buffered. */
  async cancel(): Promise<void> {
    const tag = await this.consumerTag;
    await this.host.cancel(tag);
  }
}
