/**
 * Channel: the API, one method per AMQP method a client sends (exchange, queue, basic, tx;
 * publishing and confirm mode in channel-publish.ts), over the state machine of channel-core.ts.
 */
import type { MethodOf } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";
import type { FieldTable } from "../protocol/table.js";
import { PublishingChannel } from "./channel-publish.js";
import { queueArguments, type ExchangeDeclareOptions, type QueueDeclareOptions, type QueueDeclareResult, type WaitOptions } from "./channel-options.js";
import { CallbackConsumer } from "./callback-consumer.js";
import type { ProcessContext } from "./diagnostics.js";
import { MessageStream, type ConsumeOptions, type ConsumerSink } from "./consumer.js";
import { consumeMethod, streamPosition, trackStreamOffset } from "./consumers.js";
import { resumeArguments } from "./topology.js";
import { callingSinks } from "./handler.js";
import { tagOf } from "./delivery-tags.js";
import { AmqpError, DeprecatedFeatureWarning, IgnoredArgumentWarning, NotFoundError } from "./errors.js";
import { Delivery, type DeliveryFields, type Message } from "./message.js";

export type { ChannelEvents, ConfirmSelectOptions, ExchangeDeclareOptions, PublishOptions, QueueDeclareOptions, QueueDeclareResult, WaitOptions } from "./channel-options.js";

export type { Publication } from "./publish-batch.js";

/** A callback consumer (callback-consumer.ts) of a Channel. */
export type Consumer = CallbackConsumer<Channel>;

/** An AMQP channel: open one with Connection.openChannel(). One method per AMQP method a client sends. */
export class Channel extends PublishingChannel {
  /** basic.qos global=false in force: what a consumer started now gets (0: unlimited). */
  private perConsumerPrefetch = 0;

  // -------------------------------------------------------------------------------------------
  // exchange and queue

  /** exchange.declare. Type: "direct", "fanout", "topic", "headers", or a plugin's type. */
  async exchangeDeclare(exchange: string, type: string, options: ExchangeDeclareOptions = {}): Promise<void> {
    const declared = { type, durable: options.durable ?? false, autoDelete: options.autoDelete ?? false, internal: options.internal ?? false, arguments: options.arguments ?? {} };
    const passive = options.passive ?? false;
    await this.call({ name: "exchange.declare", exchange, passive, noWait: false, ...declared }, ["exchange.declare-ok"], options);
    if (!passive) this.topology?.exchangeDeclared(exchange, declared);
  }

  /** exchange.delete; `ifUnused`: only when no queue or exchange is bound to it. */
  async exchangeDelete(exchange: string, options: { ifUnused?: boolean } & WaitOptions = {}): Promise<void> {
    await this.call({ name: "exchange.delete", exchange, ifUnused: options.ifUnused ?? false, noWait: false }, ["exchange.delete-ok"], options);
    this.topology?.exchangeDeleted(exchange);
  }

  /** Route messages from `source` to `destination` (RabbitMQ exchange-to-exchange binding). */
  async exchangeBind(destination: string, source: string, routingKey = "", args: FieldTable = {}, wait?: WaitOptions): Promise<void> {
    await this.call({ name: "exchange.bind", destination, source, routingKey, noWait: false, arguments: args }, ["exchange.bind-ok"], wait);
    this.topology?.bound({ kind: "exchange", destination, source, routingKey, arguments: args });
  }

  /** Remove an exchange-to-exchange binding (exchange.unbind). */
  async exchangeUnbind(destination: string, source: string, routingKey = "", args: FieldTable = {}, wait?: WaitOptions): Promise<void> {
    await this.call({ name: "exchange.unbind", destination, source, routingKey, noWait: false, arguments: args }, ["exchange.unbind-ok"], wait);
    this.topology?.unbound({ kind: "exchange", destination, source, routingKey, arguments: args });
  }

  /** queue.declare; "" asks the broker to name the queue (returned as `queue`). */
  async queueDeclare(queue = "", options: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    const declared = { durable: options.durable ?? false, exclusive: options.exclusive ?? false, autoDelete: options.autoDelete ?? false, arguments: queueArguments(options) };
    const passive = options.passive ?? false;
    const m = (await this.call({ name: "queue.declare", queue, passive, noWait: false, ...declared }, ["queue.declare-ok"], options)) as MethodOf<"queue.declare-ok">;
    if (!passive) this.topology?.queueDeclared(queue, m.queue, declared);
    if (declared.arguments["x-queue-mode"] !== undefined && brokerAtLeast(this.host.serverProperties, 3, 12)) {
      this.warn(new IgnoredArgumentWarning("x-queue-mode", `queue ${JSON.stringify(m.queue)} was declared with x-queue-mode, which RabbitMQ 3.12 and later ignore (every classic queue keeps its messages on disk, as lazy ones did); leave it out`));
    }
    return { queue: m.queue, messageCount: m.messageCount, consumerCount: m.consumerCount };
  }

  /** queue.bind: route messages from `exchange` with `routingKey` to `queue`. */
  async queueBind(queue: string, exchange: string, routingKey = "", args: FieldTable = {}, wait?: WaitOptions): Promise<void> {
    await this.call({ name: "queue.bind", queue, exchange, routingKey, noWait: false, arguments: args }, ["queue.bind-ok"], wait);
    this.topology?.bound({ kind: "queue", destination: queue, source: exchange, routingKey, arguments: args });
  }

  /** queue.unbind: remove a binding made with queueBind(). */
  async queueUnbind(queue: string, exchange: string, routingKey = "", args: FieldTable = {}, wait?: WaitOptions): Promise<void> {
    await this.call({ name: "queue.unbind", queue, exchange, routingKey, arguments: args }, ["queue.unbind-ok"], wait);
    this.topology?.unbound({ kind: "queue", destination: queue, source: exchange, routingKey, arguments: args });
  }

  /** Remove every ready message; returns how many. */
  async queuePurge(queue: string, wait?: WaitOptions): Promise<{ messageCount: number }> {
    const m = (await this.call({ name: "queue.purge", queue, noWait: false }, ["queue.purge-ok"], wait)) as MethodOf<"queue.purge-ok">;
    return { messageCount: m.messageCount };
  }

  /** queue.delete; `ifUnused` / `ifEmpty`: only without consumers / messages. Returns how many messages it held. */
  async queueDelete(queue: string, options: { ifUnused?: boolean; ifEmpty?: boolean } & WaitOptions = {}): Promise<{ messageCount: number }> {
    const m = (await this.call({ name: "queue.delete", queue, ifUnused: options.ifUnused ?? false, ifEmpty: options.ifEmpty ?? false, noWait: false }, ["queue.delete-ok"], options)) as MethodOf<"queue.delete-ok">;
    this.topology?.queueDeleted(queue);
    return { messageCount: m.messageCount };
  }

  // -------------------------------------------------------------------------------------------
  // basic

  /**
   * basic.qos. RabbitMQ reads `global: false` as a limit per consumer (for consumers started
   * after this call) and `global: true` as one limit shared by the channel (per_consumer_qos).
   * RabbitMQ 4.3 and later deny `global_qos` by default: they answer qos-ok and apply the
   * limit per consumer, so warren emits a "warning" (DeprecatedFeatureWarning) there.
   */
  async prefetch(count: number, options: { global?: boolean; size?: number } & WaitOptions = {}): Promise<void> {
    await this.call({ name: "basic.qos", prefetchSize: options.size ?? 0, prefetchCount: count, global: options.global ?? false }, ["basic.qos-ok"], options);
    if (options.global === true && brokerAtLeast(this.host.serverProperties, 4, 3)) {
      this.warn(new DeprecatedFeatureWarning("global_qos", `prefetch(${count}, { global: true }) on channel ${this.id} is applied per consumer, not shared by the channel`));
    }
    this.tags.prefetch(count);
    if (options.global !== true) this.perConsumerPrefetch = count;
    this.record?.qos(count, options.size ?? 0, options.global ?? false);
  }

  /** Start a consumer that calls `onMessage` per delivery (see callback-consumer.ts). */
  consume(queue: string, onMessage: (msg: Message) => unknown, options?: ConsumeOptions): Promise<Consumer>;
  /** Start a consumer read with `for await`; `break` cancels it. */
  consume(queue: string, options?: ConsumeOptions): MessageStream;
  consume(queue: string, a?: ((msg: Message) => unknown) | ConsumeOptions, b?: ConsumeOptions): Promise<Consumer> | MessageStream {
    if (typeof a !== "function") return new MessageStream(this, queue, a ?? {});
    try {
      return new CallbackConsumer<Channel>(this, queue, a, b ?? {}).start();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // What a callback consumer needs of its channel (ConsumerChannel, callback-consumer.ts).

  /** @internal */ get connectionOpen(): boolean {
    return !this.host.closing && this.host.reason === undefined;
  }
  /** @internal */ get consumerPrefetch(): number {
    return this.perConsumerPrefetch;
  }
  /** @internal */ get timeout(): number {
    return this.host.options.timeout;
  }
  /** @internal */ openSibling(): Promise<Channel> {
    return this.connection.openChannel();
  }

  /** @internal A passive declare on a side channel: a 404 closes that one, not this. */
  async queueExists(queue: string): Promise<boolean> {
    const side = await this.host.openUnrecordedChannel();
    try {
      await side.queueDeclare(queue, { passive: true });
      return true;
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    } finally {
      if (!side.closed) await side.close();
    }
  }

  /** @internal What a traced delivery carries (diagnostics.ts, warren:process). */
  processContext(queue: string, message: Message): ProcessContext {
    return { server: this.server, channel: this.id, queue, message };
  }

  /** @internal */ heldTooLong(msg: Message, heldFor: number, consumerTimeout: number): void {
    if (this.listenerCount("consumerTimeoutWarning") > 0) this.emit("consumerTimeoutWarning", msg, heldFor);
    else process.emitWarning(`warren: delivery ${msg.fields.deliveryTag} on channel ${this.id} has been held unacknowledged for ${heldFor} ms of a ${consumerTimeout} ms consumer timeout`);
  }

  /** @internal */ consumerFailed(err: unknown, msg: Message): void {
    if (this.listenerCount("consumerError") > 0) this.emit("consumerError", err, msg);
    else process.emitWarning(`warren: a consumer callback failed on channel ${this.id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }

  private warn(w: DeprecatedFeatureWarning | IgnoredArgumentWarning): void {
    if (this.listenerCount("warning") > 0) this.emit("warning", w);
    else process.emitWarning(w);
  }

  /**
   * @internal basic.consume; the sink is registered before any later frame is read (deliveries
   * may follow consume-ok in the same chunk). A stream consumer's sink started again (healing)
   * resumes after the last offset it was given.
   */
  async startConsumer(queue: string, sink: ConsumerSink, options: ConsumeOptions): Promise<string> {
    const stream = streamPosition(sink, options);
    const args = stream === undefined ? options : { ...options, arguments: resumeArguments(options.arguments, stream) };
    const m = (await this.call(consumeMethod(queue, options.consumerTag ?? "", args), ["basic.consume-ok"], {
      onReply: (reply) => {
        const tag = (reply as MethodOf<"basic.consume-ok">).consumerTag;
        this.record?.consumer(tag, queue, options, stream);
        this.consumers.add(tag, stream !== undefined ? trackStreamOffset(sink, stream) : sink);
      },
    })) as MethodOf<"basic.consume-ok">;
    return m.consumerTag;
  }

  /**
   * Close the channel (see ChannelCore.close). From the call on, no delivery reaches a handler
   * or callback. Every consumer is cancelled first, so nothing new arrives and what no handler
   * took goes back to the queue (nacked: see stopHandlers); then the handlers still running (of a
   * consumer, or of one cancelled just before) are waited for, at most the timeout, so what they
   * finish is settled before the channel goes. A handler that calls close() itself is not waited
   * for: it waits for the close.
   */
  override close(): Promise<void> {
    const callers = callingSinks(this.consumers.all());
    const closed = this.stopHandlers().then(() => super.close());
    for (const sink of callers) sink.closing?.(closed);
    return closed;
  }

  /** `await using ch = await conn.openChannel()`: closed at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal A consumer of this open channel, or one that ended, has a handler running. */
  get handlersRunning(): boolean {
    return this.state === "open" && !this.host.closing && this.consumers.busy;
  }

  /** @internal The consumers of this channel, and those that ended with handlers still running. */
  get sinks(): ConsumerSink[] {
    return this.consumers.all();
  }

  /** @internal The channel or its connection begins to close: no delivery reaches a handler or callback any more. */
  stopConsumers(): void {
    this.consumers.stopAll();
  }

  /**
   * @internal Stop the consumers and cancel them, then wait for the handlers still running (at
   * most the timeout). Cancelled before the channel closes, so that what they were sent and no
   * handler took goes back as a return (basic.nack): RabbitMQ 4.3 counts a delivery that a
   * channel's close requeues as a failed one, toward x-delivery-limit.
   */
  async stopHandlers(): Promise<void> {
    if (this.state !== "open" || this.host.closing) return;
    this.consumers.stopAll();
    await this.cancelAll({});
    if (this.consumers.busy) await Promise.all(this.consumers.all().map((sink) => sink.drain?.(this.host.options.timeout)));
  }

  /** @internal The connection closes: cancel every consumer first (see stopHandlers), with the close's own calls. */
  async cancelConsumers(): Promise<void> {
    if (this.state === "open") await this.cancelAll({ closing: true });
  }

  private async cancelAll(options: { closing?: boolean }): Promise<void> {
    await Promise.all(this.consumers.tags().map((tag) => this.cancelConsumer(tag, options).catch(() => undefined)));
  }

  /** basic.cancel: once it resolves, the consumer gets nothing more. */
  async cancel(consumerTag: string, wait?: WaitOptions): Promise<void> {
    await this.cancelConsumer(consumerTag, wait ?? {});
  }

  private async cancelConsumer(consumerTag: string, options: WaitOptions & { closing?: boolean }): Promise<void> {
    if (this.consumers.get(consumerTag) === undefined) return;
    await this.call({ name: "basic.cancel", consumerTag, noWait: false }, ["basic.cancel-ok"], {
      ...options,
      onReply: () => {
        this.record?.drop(consumerTag);
        this.consumers.remove(consumerTag)?.end(undefined);
      },
    });
  }

  /** basic.get: one message, or null when the queue is empty. */
  async get(queue: string, options: { noAck?: boolean } & WaitOptions = {}): Promise<Message | null> {
    const r = await this.call({ name: "basic.get", queue, noAck: options.noAck ?? false }, ["basic.get-ok", "basic.get-empty"], options);
    return r !== null && "body" in r ? r : null;
  }

  /** @internal */ protected delivery(body: Buffer, properties: BasicProperties, fields: DeliveryFields): Message {
    return new Delivery(this, body, properties, fields);
  }

  /**
   * Acknowledge a delivery (or, with multiple, every delivery up to it). Returns undefined, or
   * the channel's close error if it is closed: an ack can't be sent then, and the broker
   * requeues the message by itself.
   */
  ack(msg: Message | number, options: { multiple?: boolean } = {}): AmqpError | undefined {
    return this.settleOnce(msg, "basic.ack", (tag) => this.tags.ack(tag, options.multiple ?? false));
  }

  /**
   * basic.nack: give back one or (multiple) many deliveries (requeue, the default) or drop them.
   * On RabbitMQ 4.3 and later a nack is a return, not counted toward x-delivery-limit; before
   * 4.3 it counts like a reject (Message.nack says more).
   */
  nack(msg: Message | number, options: { multiple?: boolean; requeue?: boolean } = {}): AmqpError | undefined {
    return this.settleOnce(msg, "basic.nack", (deliveryTag) => this.tags.settle({ name: "basic.nack", deliveryTag, multiple: options.multiple ?? false, requeue: options.requeue ?? true }));
  }

  /** basic.reject: this delivery failed; requeue defaults to true. Counted toward x-delivery-limit on every RabbitMQ (Message.reject). */
  reject(msg: Message | number, options: { requeue?: boolean } = {}): AmqpError | undefined {
    return this.settleOnce(msg, "basic.reject", (deliveryTag) => this.tags.settle({ name: "basic.reject", deliveryTag, requeue: options.requeue ?? true }));
  }

  /**
   * The one way a user's ack, nack or reject goes out. Refused, with the reason returned, when
   * the broker would close the channel for it (406 PRECONDITION_FAILED): `msg` came on another
   * channel, or it is settled already (see isSettled).
   */
  private settleOnce(msg: Message | number, what: string, send: (tag: number) => AmqpError | undefined): AmqpError | undefined {
    if (!this.settles()) return this.closedError();
    const tag = tagOf(msg);
    if (msg instanceof Delivery && msg.channel !== this) return new AmqpError(`${what} of delivery ${tag}: it came on another channel, and delivery tags are per channel`);
    if (this.isSettled(msg, tag)) return new AmqpError(`${what} of delivery ${tag}: it is settled already (acked, nacked, rejected, covered by a multiple ack, or delivered with noAck), and a second settle would close the channel (406)`);
    const err = send(tag);
    if (err === undefined && msg instanceof Delivery) msg.settled = true;
    return err;
  }

  /** @internal Settled through this channel, or covered by the acked-through tag (delivery-tags.ts). */
  isSettled(msg: Message | number, tag = tagOf(msg)): boolean {
    return (msg instanceof Delivery && msg.settled) || this.tags.settled(tag);
  }

  /** basic.recover: redeliver every unacked message (requeue true: possibly to other consumers). */
  async recover(options: { requeue?: boolean } & WaitOptions = {}): Promise<void> {
    await this.call({ name: "basic.recover", requeue: options.requeue ?? true }, ["basic.recover-ok"], { ...options, onReply: () => this.tags.redelivered() });
  }

  // -------------------------------------------------------------------------------------------
  // tx

  /** tx.select: publishes and acks on this channel are held until txCommit() (or dropped by txRollback()). */
  async txSelect(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.select" }, ["tx.select-ok"], wait);
  }
  /** tx.commit: what was published and acked since the last commit takes effect. */
  async txCommit(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.commit" }, ["tx.commit-ok"], wait);
  }
  /** tx.rollback: what was published and acked since the last commit is dropped. */
  async txRollback(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.rollback" }, ["tx.rollback-ok"], wait);
  }

  /** @internal for consumer iterators */
  holdReading(): void {
    this.host.holdReading();
  }
  /** @internal */
  releaseReading(): void {
    this.host.releaseReading();
  }
}

/** Whether the broker's connection.start says it is RabbitMQ `major.minor` or later. */
function brokerAtLeast(serverProperties: FieldTable, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(String(serverProperties["version"] ?? ""));
  if (m === null) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}
