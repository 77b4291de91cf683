/**
 * amqplib's Channel and ConfirmChannel (promise API) over one warren Channel. What differs from
 * warren's own API is kept here: publish and sendToQueue return a boolean (false: wait for
 * "drain") and throw on a closed channel; a confirm channel's publish takes a callback; a channel
 * the broker closes emits "error" then "close", and its operations reject with amqplib's errors;
 * a consumer the broker cancels gets `null`.
 */
import { EventEmitter } from "node:events";
import {
  ChannelClosedError,
  NackError,
  ReturnedError,
  type Channel as WarrenChannel,
  type Connection as WarrenConnection,
  type Message as WarrenMessage,
} from "../index.js";
import {
  consumeArguments,
  consumeMessage,
  exchangeOptions,
  getMessage,
  publishOptions,
  queueOptions,
  returnedMessage,
} from "./args.js";
import { IllegalOperationError, channelClosed, operationError, warnOrEmitError } from "./errors.js";
import type { ConsumeMessage, GetMessage, Message, Options, Replies, ServerProperties } from "./types.js";

/** What amqplib calls a channel's `connection`: the broker's side of it. */
export interface ConnectionInfo {
  readonly serverProperties: ServerProperties;
}

/** What the layer needs of warren's Connection beyond its public API (internal members). */
interface Writable {
  /** The socket is over its high-water mark, or the broker has blocked the connection. */
  readonly writeWouldWait: boolean;
  /** Resolves once a write would not wait. */
  writable(): Promise<void>;
}

/** The warren message behind each amqplib message handed out, so that settling it is checked as warren checks. */
const delivered = new WeakMap<object, WarrenMessage>();

export class Channel extends EventEmitter {
  readonly connection: ConnectionInfo;
  /** @internal */ protected readonly ch: WarrenChannel;
  readonly #conn: WarrenConnection & Writable;
  #closed = false;
  #draining = false;
  /** Consumer tag -> the callback, told `null` when the broker cancels the consumer. */
  readonly #consumers = new Map<string, (msg: ConsumeMessage | null) => void>();

  /** @internal ChannelModel.createChannel() makes channels. */
  constructor(ch: WarrenChannel, conn: WarrenConnection) {
    super();
    this.ch = ch;
    this.#conn = conn as WarrenConnection & Writable;
    this.connection = conn as unknown as ConnectionInfo;
    ch.on("return", (m) => this.emit("return", returnedMessage(m)));
    ch.on("cancel", (consumerTag) => {
      const callback = this.#consumers.get(consumerTag);
      this.#consumers.delete(consumerTag);
      this.emit("cancel", { consumerTag });
      callback?.(null);
    });
    ch.on("close", (err) => {
      this.#closed = true;
      if (err instanceof ChannelClosedError && err.initiatedBy === "server")
        warnOrEmitError(this, channelClosed(err), "a channel closed with an error");
      this.emit("close");
    });
    // warren warns of these itself without a listener; amqplib has no such events.
    ch.on("warning", () => undefined);
  }

  /** An operation: IllegalOperationError on a closed channel, amqplib's errors for a refusal. */
  protected op<T>(method: string, run: () => Promise<T>): Promise<T> {
    if (this.#closed || this.ch.closed)
      return Promise.reject(new IllegalOperationError("Channel closed", this.#stack()));
    return run().catch((err: unknown) => {
      throw operationError(method, err, false);
    });
  }

  #stack(): string | undefined {
    const reason = this.ch.reason;
    return reason === undefined ? undefined : `Stack capture: ${reason.message}`;
  }

  /** Throws IllegalOperationError on a closed channel: publish, ack and the like do not return a promise. */
  protected assertOpen(): void {
    if (this.#closed || this.ch.closed) throw new IllegalOperationError("Channel closed", this.#stack());
  }

  close(): Promise<void> {
    if (this.#closed || this.ch.closed)
      return Promise.reject(new IllegalOperationError("Channel closed", this.#stack()));
    return this.ch.close();
  }

  assertQueue(queue?: string, options?: Options.AssertQueue): Promise<Replies.AssertQueue> {
    return this.op("queue.declare", () => this.ch.queueDeclare(queue ?? "", queueOptions(options)));
  }

  checkQueue(queue: string): Promise<Replies.AssertQueue> {
    return this.op("queue.declare", () => this.ch.queueDeclare(queue, { passive: true }));
  }

  deleteQueue(queue: string, options: Options.DeleteQueue = {}): Promise<Replies.DeleteQueue> {
    return this.op("queue.delete", () =>
      this.ch.queueDelete(queue, { ifUnused: !!options.ifUnused, ifEmpty: !!options.ifEmpty }),
    );
  }

  purgeQueue(queue: string): Promise<Replies.PurgeQueue> {
    return this.op("queue.purge", () => this.ch.queuePurge(queue));
  }

  bindQueue(queue: string, source: string, pattern: string, args?: any): Promise<Replies.Empty> {
    return this.op("queue.bind", () => this.ch.queueBind(queue, source, pattern, args ?? {}).then(() => ({})));
  }

  unbindQueue(queue: string, source: string, pattern: string, args?: any): Promise<Replies.Empty> {
    return this.op("queue.unbind", () => this.ch.queueUnbind(queue, source, pattern, args ?? {}).then(() => ({})));
  }

  assertExchange(exchange: string, type: string, options?: Options.AssertExchange): Promise<Replies.AssertExchange> {
    return this.op("exchange.declare", () =>
      this.ch.exchangeDeclare(exchange, type, exchangeOptions(options)).then(() => ({ exchange })),
    );
  }

  checkExchange(exchange: string): Promise<Replies.Empty> {
    return this.op("exchange.declare", () => this.ch.exchangeDeclare(exchange, "", { passive: true }).then(() => ({})));
  }

  deleteExchange(exchange: string, options: Options.DeleteExchange = {}): Promise<Replies.Empty> {
    return this.op("exchange.delete", () =>
      this.ch.exchangeDelete(exchange, { ifUnused: !!options.ifUnused }).then(() => ({})),
    );
  }

  bindExchange(destination: string, source: string, pattern: string, args?: any): Promise<Replies.Empty> {
    return this.op("exchange.bind", () =>
      this.ch.exchangeBind(destination, source, pattern, args ?? {}).then(() => ({})),
    );
  }

  unbindExchange(destination: string, source: string, pattern: string, args?: any): Promise<Replies.Empty> {
    return this.op("exchange.unbind", () =>
      this.ch.exchangeUnbind(destination, source, pattern, args ?? {}).then(() => ({})),
    );
  }

  /**
   * basic.publish. Returns false when the socket is over its high-water mark (or the broker has
   * blocked the connection): the channel emits "drain" when it can take more. Throws
   * IllegalOperationError on a closed channel, TypeError when `content` is not a Buffer.
   */
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): boolean {
    return this.send(exchange, routingKey, content, options, undefined);
  }

  sendToQueue(queue: string, content: Buffer, options?: Options.Publish): boolean {
    return this.publish("", queue, content, options);
  }

  /** @internal publish(); a confirm channel hands the outcome to `settled`. */
  protected send(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish | undefined,
    settled: ((err: unknown) => void) | undefined,
  ): boolean {
    this.assertOpen();
    if (!Buffer.isBuffer(content)) throw new TypeError(`Expected buffer; got ${String(content)}`);
    const published = this.ch.publish(exchange, routingKey, content, publishOptions(options));
    if (settled === undefined)
      published.catch(() => undefined); // a loss shows as the channel's "error" and "close"
    else published.then(() => settled(null), settled);
    if (!this.#conn.writeWouldWait) return true;
    if (!this.#draining) {
      this.#draining = true;
      this.#conn.writable().then(
        () => {
          this.#draining = false;
          this.emit("drain");
        },
        () => (this.#draining = false),
      );
    }
    return false;
  }

  /**
   * Start a consumer: `onMessage` is called with each delivery as it arrives (not awaited, as in
   * amqplib), and with `null` if the broker cancels the consumer.
   */
  consume(
    queue: string,
    onMessage: (msg: ConsumeMessage | null) => void,
    options: Options.Consume = {},
  ): Promise<Replies.Consume> {
    return this.op("basic.consume", async () => {
      let tag = "";
      const consumer = await this.ch.consume(
        queue,
        // Returns nothing, so warren never waits for it: amqplib calls onMessage per delivery as it arrives.
        (m): void => {
          const msg = consumeMessage(m);
          delivered.set(msg, m);
          const r = onMessage(msg) as unknown;
          // amqplib leaves a rejected promise unhandled, which ends the process: a warning instead.
          if (r instanceof Promise)
            r.catch((e: unknown) =>
              process.emitWarning(`warren/amqplib: a consumer callback of ${tag} failed: ${String(e)}`),
            );
        },
        {
          noAck: !!options.noAck,
          exclusive: !!options.exclusive,
          noLocal: !!options.noLocal,
          consumerTag: options.consumerTag ?? "",
          arguments: consumeArguments(options),
        },
      );
      tag = consumer.consumerTag;
      this.#consumers.set(tag, onMessage);
      return { consumerTag: tag };
    });
  }

  cancel(consumerTag: string): Promise<Replies.Cancel> {
    return this.op("basic.cancel", async () => {
      await this.ch.cancel(consumerTag);
      this.#consumers.delete(consumerTag);
      return { consumerTag };
    });
  }

  get(queue: string, options: Options.Get = {}): Promise<GetMessage | false> {
    return this.op("basic.get", async () => {
      const m = await this.ch.get(queue, { noAck: !!options.noAck });
      if (m === null) return false;
      const msg = getMessage(m);
      delivered.set(msg, m);
      return msg;
    });
  }

  #settle(what: string, result: Error | undefined): void {
    // A settle warren refuses would have closed the channel (406): amqplib sends it; warren says why, and the channel lives.
    if (result !== undefined && !(this.#closed || this.ch.closed))
      process.emitWarning(`warren/amqplib: ${what} not sent: ${result.message}`);
  }

  ack(message: Message, allUpTo = false): void {
    this.assertOpen();
    this.#settle("ack", this.ch.ack(delivered.get(message) ?? message.fields.deliveryTag, { multiple: allUpTo }));
  }

  ackAll(): void {
    this.assertOpen();
    this.#settle("ackAll", this.ch.ackAll());
  }

  nack(message: Message, allUpTo = false, requeue = true): void {
    this.assertOpen();
    this.#settle(
      "nack",
      this.ch.nack(delivered.get(message) ?? message.fields.deliveryTag, { multiple: allUpTo, requeue }),
    );
  }

  nackAll(requeue = true): void {
    this.assertOpen();
    this.#settle("nackAll", this.ch.nackAll({ requeue }));
  }

  reject(message: Message, requeue = true): void {
    this.assertOpen();
    this.#settle("reject", this.ch.reject(delivered.get(message) ?? message.fields.deliveryTag, { requeue }));
  }

  prefetch(count: number, global = false): Promise<Replies.Empty> {
    return this.op("basic.qos", () => this.ch.prefetch(count, { global }).then(() => ({})));
  }

  recover(): Promise<Replies.Empty> {
    return this.op("basic.recover", () => this.ch.recover().then(() => ({})));
  }
}

/** A channel in confirm mode: publish takes a callback `(err, ok)`; waitForConfirms(). */
export class ConfirmChannel extends Channel {
  /** The outcome of every publish not yet confirmed. */
  readonly #unconfirmed = new Set<Promise<void>>();

  override publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: (err: any, ok: Replies.Empty) => void,
  ): boolean {
    let settle!: (err: unknown) => void;
    const outcome = new Promise<void>((resolve, reject) => {
      settle = (err) => {
        this.#unconfirmed.delete(outcome);
        // A mandatory publish the broker returned is still acked: amqplib calls back without an error (the "return" event tells).
        const e =
          err === null || err instanceof ReturnedError
            ? null
            : err instanceof NackError
              ? new Error("message nacked")
              : new Error("channel closed");
        callback?.(e, {});
        if (e === null) resolve();
        else reject(e);
      };
    });
    outcome.catch(() => undefined);
    this.#unconfirmed.add(outcome);
    try {
      return this.send(exchange, routingKey, content, options, settle);
    } catch (e) {
      this.#unconfirmed.delete(outcome);
      throw e;
    }
  }

  override sendToQueue(
    queue: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: (err: any, ok: Replies.Empty) => void,
  ): boolean {
    return this.publish("", queue, content, options, callback);
  }

  /**
   * Resolves once every publish so far is confirmed; rejects if one was nacked ("message nacked")
   * or the channel closed first ("channel closed"). What it resolves with is amqplib's too: one
   * undefined per publish it waited for.
   */
  waitForConfirms(): Promise<void> {
    return Promise.all([...this.#unconfirmed]) as unknown as Promise<void>;
  }
}
