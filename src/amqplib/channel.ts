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
  ConnectionClosedError,
  NackError,
  type AmqpError,
  ReturnedError,
  type PublishOptions,
  type Channel as WarrenChannel,
  type Connection as WarrenConnection,
} from "../index.js";
import {
  deliveryOf,
  consumeArguments,
  consumeMessage,
  exchangeOptions,
  getMessage,
  publishOptions,
  queueOptions,
  returnedMessage,
} from "./args.js";
import { safeEmit } from "./emit.js";
import { IllegalOperationError, channelClosed, operationError, warnOrEmitError } from "./errors.js";
import { WriteBuffer } from "./write-buffer.js";
import type {
  ChannelOptions,
  ConsumeMessage,
  GetMessage,
  Message,
  Options,
  Replies,
  ServerProperties,
} from "./types.js";

/** What amqplib calls a channel's `connection`: the broker's side of it. */
export interface ConnectionInfo {
  readonly serverProperties: ServerProperties;
}

/** What the layer needs of warren's Channel beyond its public API (internal members). */
interface Unawaited {
  publishUnawaited(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    options: PublishOptions,
  ): Promise<void> | undefined;
}
interface ConfirmFrames {
  confirmFrames:
    | ((m: { name: "basic.ack" | "basic.nack"; deliveryTag: number; multiple: boolean; requeue?: boolean }) => void)
    | undefined;
}

/** What a channel knows of its model: the connection, and whom to tell first when it ends with it. */
export interface ChannelParent {
  readonly conn: WarrenConnection;
  /** The connection has ended (amqplib's model emits "error" before its channels' "close"). */
  ended(err: AmqpError): void;
}

export class Channel extends EventEmitter {
  readonly connection: ConnectionInfo;
  /** @internal */ protected readonly ch: WarrenChannel;
  readonly #buffer: WriteBuffer;
  #closed = false;
  /** Consumer tag -> the callback, told `null` when the broker cancels the consumer. */
  readonly #consumers = new Map<string, (msg: ConsumeMessage | null) => void>();

  /** @internal ChannelModel.createChannel() makes channels. */
  constructor(ch: WarrenChannel, parent: ChannelParent, options: ChannelOptions | undefined) {
    super();
    this.ch = ch;
    this.#buffer = new WriteBuffer(parent.conn, options?.highWaterMark, () => safeEmit(this, "drain"));
    this.connection = parent.conn as unknown as ConnectionInfo;
    ch.on("return", (m) => safeEmit(this, "return", returnedMessage(m)));
    ch.on("cancel", (consumerTag) => {
      const callback = this.#consumers.get(consumerTag);
      this.#consumers.delete(consumerTag);
      safeEmit(this, "cancel", { consumerTag });
      callback?.(null);
    });
    ch.on("close", (err) => {
      this.#closed = true;
      if (err instanceof ConnectionClosedError) parent.ended(err);
      if (err instanceof ChannelClosedError && err.initiatedBy === "server")
        warnOrEmitError(this, channelClosed(err), "a channel closed with an error");
      safeEmit(this, "close");
    });
    // warren warns of these itself without a listener; amqplib has no such events.
    ch.on("warning", () => undefined);
  }

  /** An operation: IllegalOperationError on a closed channel, amqplib's errors for a refusal. */
  protected op<T>(method: string, run: () => Promise<T>): Promise<T> {
    if (this.#closed || this.ch.closed)
      return Promise.reject(new IllegalOperationError("Channel closed", this.#stack()));
    this.#buffer.write();
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
   * basic.publish. Returns false when amqplib's channel buffer would be full (write-buffer.ts:
   * a burst of about 2 * highWaterMark writes, or the socket over its high-water mark, or the
   * broker blocking the connection): the channel emits "drain" when it can take more. Throws
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
    settled: ((err: Error | undefined) => void) | undefined,
  ): boolean {
    this.assertOpen();
    if (!Buffer.isBuffer(content)) throw new TypeError(`Expected buffer; got ${String(content)}`);
    // Without a confirm to wait for, no promise: a loss shows as the channel's "error" and "close".
    // One held back (channel.flow) that then fails otherwise is this channel's "error".
    if (settled === undefined)
      (this.ch as WarrenChannel & Unawaited)
        .publishUnawaited(exchange, routingKey, content, publishOptions(options))
        ?.catch((e: unknown) => {
          if (!(e instanceof ChannelClosedError || e instanceof ConnectionClosedError))
            warnOrEmitError(this, e as Error, "a publish failed");
        });
    // warren's onConfirm: the outcome, a refusal included, comes to `settled` once, and no promise
    // waits per publish (the returned one never rejects).
    else void this.ch.publish(exchange, routingKey, content, publishOptions(options, settled));
    return this.#buffer.write(content.length);
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
          const r = onMessage(msg) as unknown;
          // amqplib's plumbing, which code may listen to: each delivery, after its consumer (whose
          // listener amqplib registered first).
          if (this.listenerCount("delivery") > 0) safeEmit(this, "delivery", msg);
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
      return getMessage(m);
    });
  }

  #settle(what: string, result: Error | undefined): void {
    if (result === undefined) return void this.#buffer.write();
    // A settle warren refuses would have closed the channel (406): amqplib sends it; warren says why, and the channel lives.
    if (!(this.#closed || this.ch.closed)) process.emitWarning(`warren/amqplib: ${what} not sent: ${result.message}`);
  }

  ack(message: Message, allUpTo = false): void {
    this.assertOpen();
    this.#settle("ack", this.ch.ack(deliveryOf(message) ?? message.fields.deliveryTag, { multiple: allUpTo }));
  }

  ackAll(): void {
    this.assertOpen();
    this.#settle("ackAll", this.ch.ackAll());
  }

  nack(message: Message, allUpTo = false, requeue = true): void {
    this.assertOpen();
    this.#settle(
      "nack",
      this.ch.nack(deliveryOf(message) ?? message.fields.deliveryTag, { multiple: allUpTo, requeue }),
    );
  }

  nackAll(requeue = true): void {
    this.assertOpen();
    this.#settle("nackAll", this.ch.nackAll({ requeue }));
  }

  reject(message: Message, requeue = true): void {
    this.assertOpen();
    this.#settle("reject", this.ch.reject(deliveryOf(message) ?? message.fields.deliveryTag, { requeue }));
  }

  prefetch(count: number, global = false): Promise<Replies.Empty> {
    return this.op("basic.qos", () => this.ch.prefetch(count, { global }).then(() => ({})));
  }

  recover(): Promise<Replies.Empty> {
    return this.op("basic.recover", () => this.ch.recover().then(() => ({})));
  }
}

/** A channel in confirm mode: publish takes a callback `(err, ok)`; waitForConfirms(). */
/** A waitForConfirms() call: the publishes made before it that are still unconfirmed. */
interface ConfirmWaiter {
  /** The sequence number of the last publish it waits for. */
  upTo: number;
  remaining: number;
  /** How many it waits for in all (what it resolves with: that many undefined, as amqplib's Promise.all). */
  count: number;
  failure: Error | undefined;
  resolve: (v: undefined[]) => void;
  reject: (e: Error) => void;
}

/** A channel in confirm mode: publish takes a callback `(err, ok)`; waitForConfirms(); "ack" and "nack" events. */
export class ConfirmChannel extends Channel {
  /** @internal ChannelModel.createConfirmChannel() makes these. */
  constructor(ch: WarrenChannel, parent: ChannelParent, options: ChannelOptions | undefined) {
    super(ch, parent, options);
    // amqplib's "ack" and "nack", per frame from the broker, after the callbacks of the publishes
    // it settles (their onConfirm runs as the frame is handled; the event is queued after).
    (ch as WarrenChannel & ConfirmFrames).confirmFrames = (m) => {
      const fields =
        m.name === "basic.ack"
          ? { deliveryTag: m.deliveryTag, multiple: m.multiple }
          : { deliveryTag: m.deliveryTag, multiple: m.multiple, requeue: m.requeue };
      queueMicrotask(() => safeEmit(this, m.name === "basic.ack" ? "ack" : "nack", fields));
    };
  }

  /** Publishes made so far (each one's sequence number), and how many are not yet confirmed. */
  #published = 0;
  #unconfirmed = 0;
  /** waitForConfirms() calls, few and short-lived: each settle looks at every one. */
  #waiters: ConfirmWaiter[] = [];

  override publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: (err: any, ok: Replies.Empty) => void,
  ): boolean {
    const seq = this.#published + 1;
    const written = this.send(exchange, routingKey, content, options, (err) => this.#settled(seq, err, callback));
    this.#published = seq;
    this.#unconfirmed++;
    return written;
  }

  /** A publish is confirmed (err undefined) or not: its callback, then the waiters it held up. */
  #settled(seq: number, err: Error | undefined, callback: ((err: any, ok: Replies.Empty) => void) | undefined): void {
    this.#unconfirmed--;
    // A mandatory publish the broker returned is still acked: amqplib calls back without an error (the "return" event tells).
    const e =
      err === undefined || err instanceof ReturnedError
        ? null
        : err instanceof NackError
          ? new Error("message nacked")
          : new Error("channel closed");
    // The waiters it held up go on whatever the callback does: one that throws (the caller's bug,
    // a process warning through onConfirm) must not leave waitForConfirms waiting forever.
    try {
      callback?.(e, {});
    } finally {
      this.#release(seq, e);
    }
  }

  /** Publish `seq` is settled: the waitForConfirms() calls waiting for it, with its error if any. */
  #release(seq: number, e: Error | null): void {
    if (this.#waiters.length === 0) return;
    for (const w of this.#waiters) {
      if (seq > w.upTo) continue;
      if (e !== null) w.failure ??= e;
      if (--w.remaining === 0) {
        if (w.failure === undefined) w.resolve(new Array<undefined>(w.count).fill(undefined));
        else w.reject(w.failure);
      }
    }
    this.#waiters = this.#waiters.filter((w) => w.remaining > 0);
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
    const count = this.#unconfirmed;
    if (count === 0) return Promise.resolve([]) as unknown as Promise<void>;
    return new Promise<undefined[]>((resolve, reject) => {
      this.#waiters.push({ upTo: this.#published, remaining: count, count, failure: undefined, resolve, reject });
    }) as unknown as Promise<void>;
  }
}
