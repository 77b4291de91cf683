/**
 * The callback form of a consumer, as consume(queue, handler, options) returns it: its handlers
 * (handler.ts), its prefetch, its consumer timeout warning (held-watch.ts), and its healing (the
 * `resubscribe` option, resubscribe.ts):
 * - after a broker-sent basic.cancel (its queue deleted, its quorum queue's node lost, a consumer
 *   timeout), it consumes again on the same channel;
 * - after its channel is closed under it (by the broker: 404, 406, a consumer timeout on
 *   RabbitMQ 3.x; or by warren, over a call that timed out), on a new channel of the same
 *   connection, with the same per-consumer prefetch. The connection closing ends it for good.
 *
 * channel.ts constructs it; its `channel` is typed by a type import of channel.ts, the second
 * back-reference test/infra/layout.test.ts allows.
 */
import { EventEmitter } from "node:events";
import type { Channel } from "./channel.js";
import type { QueueDeclareOptions } from "./channel-options.js";
import type { ConsumeOptions, StreamHost } from "./message-stream.js";
import {
  AbortError,
  AccessRefusedError,
  AmqpError,
  ChannelClosedError,
  ConsumerCancelledError,
  ConsumerEndedError,
} from "./errors.js";
import { HandlerSink, handlerOptions, type HandlerHost } from "./handler.js";
import { HeldWatch } from "./held-watch.js";
import { Delivery, type Message } from "./message.js";
import { resubscribe, resubscribeOptions, type Resubscribe } from "./resubscribe.js";
import type { ConsumerStats } from "./stats.js";
import { badTimeout, isTimeout } from "./wait.js";

/** @internal What a callback consumer needs of a channel (channel.ts makes one per channel). */
export interface ConsumerChannel extends StreamHost {
  /** The channel itself, as the consumer's users see it. */
  readonly channel: Channel;
  readonly closed: boolean;
  /** The connection is open (not closing, closed, or given up on). */
  readonly connectionOpen: boolean;
  /** The per-consumer prefetch (basic.qos global=false) a consumer started now gets; 0: none. */
  readonly consumerPrefetch: number;
  /** The connection's sync-call timeout (ms): the default bound of a drain. */
  readonly timeout: number;
  prefetch(count: number): Promise<void>;
  queueDeclare(queue: string, options: QueueDeclareOptions): Promise<unknown>;
  /** Whether `queue` exists, asked where a 404 closes nothing of the consumer's. */
  queueExists(queue: string): Promise<boolean>;
  /** A new channel of the same connection. */
  openSibling(): Promise<ConsumerChannel>;
  /** A handler threw or rejected: the channel's "consumerError" event, or a process warning. */
  consumerFailed(err: unknown, msg: Message): void;
  /** A delivery is held past the warning share of the consumer timeout. */
  heldTooLong(msg: Message, heldFor: number, consumerTimeout: number): void;
}

/** The events a callback consumer emits (Consumer). */
export interface ConsumerEvents {
  /**
   * The consumer ended without this client asking: the broker cancelled it
   * (ConsumerCancelledError), or its channel closed (that close error). With `resubscribe`, it
   * heals next ("resubscribed" or "resubscribeFailed"); without, onCancel hears the same error.
   */
  cancelled: [err: AmqpError];
  /** It consumes again, under a new consumer tag; `channel` is the one it is on now (a new one when its channel closed). */
  resubscribed: [info: { queue: string; from: string; to: string; channel: Channel }];
  /** It gave up healing (attempts used up, or the connection closed); onCancel hears the same error. */
  resubscribeFailed: [err: AmqpError];
}

/** A callback consumer, as consume(queue, handler, options) returns it (`Consumer`): its tag, its channel, cancel(), and its events. */
export class Consumer extends EventEmitter<ConsumerEvents> {
  #channel: ConsumerChannel;
  #tag = "";
  readonly #queue: string;
  readonly #options: ConsumeOptions;
  readonly #sink: HandlerSink;
  readonly #heal: Resubscribe | undefined;
  /** Asked for by `concurrency`, or what the channel had: put on a new channel again. */
  #prefetch = 0;
  /** Aborted by cancel() or the consume signal: no more healing. */
  readonly #stopped = new AbortController();
  /** Paused with pause(): not consuming, not healing, until resume(). */
  #paused = false;
  /** Why it ended for good (undefined: cancel(), or not ended). */
  #endReason: AmqpError | undefined;
  /** pause() and resume() calls, applied one after another in the order they were made. */
  #turn: Promise<unknown> = Promise.resolve();
  /** The consume signal's abort listener, let go once the consumer ends. */
  readonly #onAbort = () => void this.cancel().catch(() => undefined);

  /** @internal Checks the options (throws TypeError/RangeError); start() consumes. */
  constructor(channel: ConsumerChannel, queue: string, handler: (msg: Message) => unknown, options: ConsumeOptions) {
    super();
    this.#channel = channel;
    this.#queue = queue;
    this.#options = options;
    this.#heal = resubscribeOptions(options.resubscribe);
    const host: HandlerHost = {
      giveBack: (msgs) => this.#channel.giveBack(msgs),
      failed: (err, msg) => this.#channel.consumerFailed(err, msg),
      context: (msg) => this.#channel.processContext(this.#queue, msg),
      pauseReading: () => this.#channel.pauseReading(),
      resumeReading: () => this.#channel.resumeReading(),
    };
    this.#sink = new HandlerSink(handler, { ...handlerOptions(options), watch: this.#watch() }, host, (err) =>
      this.#ended(err),
    );
  }

  /** The consumer tag it consumes under now (a new one after each resubscribe). */
  get consumerTag(): string {
    return this.#tag;
  }

  /** The channel it consumes on now (a new one after its channel closed and it resubscribed). */
  get channel(): Channel {
    return this.#channel.channel;
  }

  /** @internal basic.consume, after a basic.qos that fits `concurrency` when the channel has no prefetch. */
  async start(): Promise<this> {
    const signal = this.#options.signal;
    if (signal?.aborted) throw new AbortError("consume aborted before it was sent");
    const o = this.#options;
    // A prefetch of twice the handlers keeps the next delivery at hand when one finishes, and no
    // more than that waiting in memory (an unlimited prefetch would bring the whole queue here).
    if (o.concurrency !== undefined && o.noAck !== true && this.#channel.consumerPrefetch === 0)
      await this.#channel.prefetch(2 * o.concurrency);
    this.#prefetch = this.#channel.consumerPrefetch;
    this.#tag = await this.#channel.startConsumer(this.#queue, this.#sink, o);
    if (signal?.aborted) this.#onAbort();
    else if (!this.#stopped.signal.aborted) signal?.addEventListener("abort", this.#onAbort, { once: true });
    return this;
  }

  /**
   * basic.cancel: no more deliveries once it resolves. With `drain`, it then waits for the
   * handlers still running (at most `timeout` ms, default the connection's timeout), so their
   * settles go out first; deliveries no handler has started go back to the queue either way.
   */
  async cancel(options: { drain?: boolean; timeout?: number } = {}): Promise<void> {
    if (options.timeout !== undefined && !isTimeout(options.timeout)) throw badTimeout("cancel", options.timeout);
    this.#stop();
    await this.#channel.cancel(this.#tag);
    if (options.drain === true) await this.#sink.drain(options.timeout ?? this.#channel.timeout);
  }

  /**
   * Stop taking deliveries without ending the consumer: basic.cancel, as cancel() does, but
   * resume() consumes again with the same handler and options. Handlers running finish and
   * settle; deliveries no handler has started go back to the queue as a return (basic.nack with
   * requeue, not counted as a failure). A paused consumer stays paused across a recovery of the
   * connection and is not healed (`resubscribe`) while paused. With `drain`, it also waits for
   * the running handlers (at most `timeout` ms). Idempotent; after cancel() or once the consumer
   * ended for good it rejects: with ConsumerEndedError, or the close error of its channel or
   * connection.
   */
  pause(options: { drain?: boolean; timeout?: number } = {}): Promise<void> {
    if (options.timeout !== undefined && !isTimeout(options.timeout))
      return Promise.reject(badTimeout("pause", options.timeout));
    return this.#inTurn(async () => {
      this.#checkLive("pause");
      if (!this.#paused) {
        this.#paused = true;
        try {
          await this.#channel.cancel(this.#tag);
        } catch (e) {
          // Still consuming (the cancel was not answered, and the channel is open): not paused.
          if (!this.#channel.closed && this.#channel.connectionOpen) this.#paused = false;
          throw e;
        }
      }
      if (options.drain === true) await this.#sink.drain(options.timeout ?? this.#channel.timeout);
    });
  }

  /**
   * Consume again after pause(): the same queue, handler and options, under a new consumer tag
   * (on a new channel of the connection if its channel closed meanwhile). Idempotent; rejects
   * as pause() does, and with the connection's close error once it is closed.
   */
  resume(): Promise<void> {
    return this.#inTurn(async () => {
      this.#checkLive("resume");
      if (!this.#paused) return;
      await this.#ensureOpenChannel();
      this.#sink.resubscribed();
      this.#tag = await this.#channel.startConsumer(this.#queue, this.#sink, this.#options);
      this.#paused = false;
    });
  }

  /** Paused with pause() and not resumed. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Its deliveries so far (across resubscribes and recoveries), what waits for a handler, what runs (stats.ts). */
  stats(): ConsumerStats {
    return {
      delivered: this.#sink.delivered,
      buffered: this.#sink.buffered,
      handlersRunning: this.#sink.running,
      paused: this.#paused,
    };
  }

  #inTurn(step: () => Promise<void>): Promise<void> {
    const run = this.#turn.then(step);
    this.#turn = run.catch(() => undefined);
    return run;
  }

  #checkLive(what: string): void {
    if (!this.#stopped.signal.aborted) return;
    throw (
      this.#endReason ??
      new ConsumerEndedError(
        this.#tag,
        `${what}: consumer ${this.#tag} was cancelled (cancel() or its signal); consume again for a new one`,
      )
    );
  }

  /** The consumer timeout warning, when asked for (consumerTimeout, warnAt). */
  #watch(): HeldWatch | undefined {
    const o = this.#options;
    if (o.consumerTimeout === undefined || o.noAck === true) return undefined;
    const share = o.warnAt ?? 0.8;
    if (!isTimeout(o.consumerTimeout)) throw badTimeout("consume: consumerTimeout", o.consumerTimeout);
    if (!(share > 0 && share <= 1))
      throw new RangeError(
        `consume: warnAt must be a share of consumerTimeout, above 0 and at most 1, got ${String(o.warnAt)}`,
      );
    const timeout = o.consumerTimeout;
    return new HeldWatch(
      timeout * share,
      (m) => m instanceof Delivery && m.channel.isSettled(m),
      (msg, heldFor) => this.#channel.heldTooLong(msg, heldFor, timeout),
    );
  }

  /** The sink ended: cancelled by us (err undefined), by the broker, or the channel closed. */
  #ended(err: AmqpError | undefined): void {
    if (this.#stopped.signal.aborted) return this.#final(undefined);
    // Paused: cancelled by pause(), or its channel closed while paused; resume() consumes again.
    if (this.#paused) return;
    if (err === undefined) return this.#final(undefined);
    this.emit("cancelled", err);
    if (this.#heal === undefined || !healable(err) || !this.#channel.connectionOpen) return this.#final(err);
    this.#resubscribe(this.#heal).catch((e: unknown) => {
      if (this.#stopped.signal.aborted) return this.#final(undefined);
      const failed = e instanceof AmqpError ? e : new AmqpError(String(e), { cause: e });
      this.emit("resubscribeFailed", failed);
      this.#final(failed);
    });
  }

  #final(err: AmqpError | undefined): void {
    this.#stop();
    this.#endReason ??= err;
    if (err !== undefined) this.#options.onCancel?.(err);
  }

  #stop(): void {
    this.#stopped.abort();
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
  }

  async #resubscribe(heal: Resubscribe): Promise<void> {
    const from = this.#tag;
    const tag = await resubscribe(
      this.#queue,
      {
        live: () => this.#channel.connectionOpen,
        exists: async () => {
          await this.#ensureOpenChannel();
          try {
            return await this.#channel.queueExists(this.#queue);
          } catch (e) {
            if (e instanceof AccessRefusedError) return undefined; // may not look (a consume-only user on RabbitMQ 4.3): consume and see
            throw e;
          }
        },
        declare: async (o) => {
          await this.#ensureOpenChannel();
          await this.#channel.queueDeclare(this.#queue, o);
        },
        consume: async () => {
          await this.#ensureOpenChannel();
          if (this.#paused) return PAUSED; // paused while healing: resume() consumes
          this.#sink.resubscribed();
          return this.#channel.startConsumer(this.#queue, this.#sink, this.#options);
        },
      },
      heal,
      this.#stopped.signal,
    );
    if (tag === PAUSED) return;
    this.#tag = tag;
    // Cancelled or paused while the new basic.consume was on its way: cancel the new consumer too.
    if (this.#stopped.signal.aborted || this.#paused) return void this.#channel.cancel(tag).catch(() => undefined);
    this.emit("resubscribed", { queue: this.#queue, from, to: tag, channel: this.#channel.channel });
  }

  /** Its channel closed: move to a new one, with the prefetch it had. */
  async #ensureOpenChannel(): Promise<void> {
    if (!this.#channel.closed) return;
    const ch = await this.#channel.openSibling();
    if (this.#prefetch > 0) await ch.prefetch(this.#prefetch);
    this.#channel = ch;
  }
}

/** What healing returns for a consumer paused meanwhile: no consumer tag is ever empty (the broker names them). */
const PAUSED = "";

/** Healed: a broker-sent basic.cancel, or a channel closed under the consumer (not by this client). */
function healable(err: AmqpError): boolean {
  return err instanceof ConsumerCancelledError || (err instanceof ChannelClosedError && err.initiatedBy !== "client");
}
