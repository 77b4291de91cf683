/**
 * Channel: the API, one method per AMQP method a client sends (exchange, queue, basic, confirm,
 * tx), over the parts it is composed of, each owning its state:
 *
 *   calls       sync-calls.ts        one synchronous request at a time, its reply or its timeout
 *   content     content.ts           method + header + body frames -> one message
 *   tags        delivery-tags.ts     acks, nacks, rejects, give-backs; ack coalescing
 *   consumers   consumers.ts         consumer tag -> what a delivery is handed to
 *   publishing  publishing.ts        publish, publishBatch, confirm mode, channel.flow
 *   recovery    channel-recovery.ts  suspend and restore (automatic recovery only)
 *
 * The channel itself keeps the state machine and routes each frame the broker sends to the part
 * it concerns. The connection is reached only through ChannelHost (channel-host.ts).
 *
 *   opening -> open -> closing -> closed
 *                 \-> recovering -> restoring -> open      (channel-recovery.ts)
 *
 * Invariants kept here:
 * - Once closing or closed, frames other than close/close-ok are dropped (spec channel.close:
 *   the peer must discard all frames until it receives close-ok), so no delivery reaches a
 *   consumer after close() resolves.
 * - One failure path, `fail(reason)`: it rejects the call in flight, the queued calls, the
 *   unconfirmed publishes and ends every consumer with the same reason.
 */
import { EventEmitter } from "node:events";
import { FrameType, ReplyCode } from "../protocol/constants.js";
import { FrameError } from "../protocol/errors.js";
import type { Frame } from "../protocol/frame.js";
import type { Method, MethodOf } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";
import type { FieldTable } from "../protocol/table.js";
import { Consumer, type ConsumerChannel } from "./consumer.js";
import type { ChannelHost } from "./channel-host.js";
import {
  queueArguments,
  type ChannelEvents,
  type ConfirmSelectOptions,
  type ExchangeDeclareOptions,
  type PublishOptions,
  type QueueDeclareOptions,
  type QueueDeclareResult,
  type WaitOptions,
} from "./channel-options.js";
import { ChannelRecovery, type RecoveredChannel } from "./channel-recovery.js";
import type { Connection } from "./connection.js";
import { MessageStream, type ConsumeOptions, type ConsumerSink, type StreamHost } from "./message-stream.js";
import { ConsumerTable, consumeMethod, streamPosition, trackStreamOffset } from "./consumer-table.js";
import { ContentAssembly, TOO_LARGE, type ContentMethod } from "./content.js";
import { DeliveryTags, tagOf } from "./delivery-tags.js";
import { callTrace, traced, type ProcessContext, type Server } from "./diagnostics.js";
import {
  AbortError,
  AmqpError,
  CLIENT_CLOSE,
  ChannelClosedError,
  ConsumerCancelledError,
  DeprecatedFeatureWarning,
  IgnoredArgumentWarning,
  NotFoundError,
  clientClose,
  closeError,
  emitOrWarn,
  isClientClose,
} from "./errors.js";
import { callingSinks } from "./handler.js";
import { Delivery, type DeliveryFields, type Message } from "./message.js";
import type { Publication } from "./publish-batch.js";
import { Publishing, type PublishingHost } from "./publishing.js";
import { Counters, type ChannelStats } from "./stats.js";
import { SyncCalls, type ReplyTo, type RequestMethod, type SyncCallOptions } from "./sync-calls.js";
import { resumeArguments, type Topology } from "./topology.js";
import { badTimeout, isTimeout, type Bounds } from "./wait.js";

export type {
  ChannelEvents,
  ConfirmSelectOptions,
  ExchangeDeclareOptions,
  PublishOptions,
  QueueDeclareOptions,
  QueueDeclareResult,
  WaitOptions,
} from "./channel-options.js";

export type { Publication } from "./publish-batch.js";

/** "recovering", "restoring": see channel-recovery.ts. */
type State = "opening" | "open" | "closing" | "closed" | "recovering" | "restoring";

/**
 * Where a call may go out beyond "open": `opening`, open()'s and recovery's own calls, which go
 * out while the channel is not (yet) open; `closing`, the connection's close's own calls, which
 * go out once the user's are refused.
 */
interface Phase {
  opening?: boolean;
  closing?: boolean;
}

/** An AMQP channel: open one with Connection.openChannel(). One method per AMQP method a client sends. */
export class Channel extends EventEmitter<ChannelEvents> {
  readonly id: number;
  /** The connection the channel belongs to. */
  readonly connection: Connection;
  private readonly host: ChannelHost<Channel>;
  private state: State = "opening";
  private closeReason: AmqpError | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly calls: SyncCalls;
  private readonly content: ContentAssembly;
  private readonly tags: DeliveryTags;
  private readonly consumers = new ConsumerTable();
  private readonly publishing: Publishing;
  /** What this channel counts itself (stats.ts); the confirm window and the tags count the rest. */
  private readonly counts = new Counters();
  /** With automatic recovery: what it does to this channel. */
  private readonly recovery: ChannelRecovery | undefined;
  /** What the declarations of this channel record for recovery; not on recovery's own channels. */
  private readonly topology: Topology | undefined;
  /** basic.qos global=false in force: what a consumer started now gets (0: unlimited). */
  private perConsumerPrefetch = 0;

  /** @internal Connection.openChannel() makes channels. */
  constructor(host: ChannelHost<Channel>, connection: Connection, id: number, recorded: boolean) {
    super();
    this.host = host;
    this.connection = connection;
    this.id = id;
    this.tags = new DeliveryTags(id, host.out);
    this.calls = new SyncCalls(
      id,
      (m) => this.tags.send(m),
      (err) => this.abandon(err),
    );
    this.content = new ContentAssembly(
      id,
      () => host.options.maxMessageSize,
      (m, properties, body) => this.onContent(m, properties, body),
    );
    this.publishing = new Publishing(this.publishingHost());
    if (host.recovery !== undefined) {
      this.recovery = new ChannelRecovery(this.recoveredChannel(), host.recovery);
      // Recovery's own channels re-declare the topology: that is not recorded again.
      if (recorded) this.topology = host.recovery.topology;
    }
  }

  private publishingHost(): PublishingHost {
    const self = this;
    return {
      id: this.id,
      out: this.host.out,
      get server() {
        return self.server;
      },
      get gate() {
        const s = self.state;
        if (s === "recovering" || s === "restoring") return "recovering";
        // Once the connection is closing, a publish would follow connection.close, and the broker discards it.
        return s === "open" && !self.host.closing ? "open" : "closed";
      },
      closedError: () => this.closedError(),
      afterRecovery: (what, signal, then) => this.recovery!.afterRecovery(what, signal, then),
      republishes: this.host.recovery?.republishUnconfirmed === true,
      writeDeferredAcks: () => this.tags.writeDeferred(),
      get callBusy() {
        return self.calls.busy;
      },
      confirmSelect: (options) => this.call({ name: "confirm.select", noWait: false }, options),
      counts: this.counts,
    };
  }

  private recoveredChannel(): RecoveredChannel {
    return {
      tags: this.tags,
      consumers: this.consumers,
      publishing: this.publishing,
      replay: (method) => this.call(method, { opening: true }),
      lose: (reason) => {
        this.content.reset();
        this.calls.fail(reason);
      },
      enter: (state) => void (this.state = state),
    };
  }

  /** True once the channel is closed (or closing); calls then fail with its close reason. */
  get closed(): boolean {
    return this.state === "closed" || this.state === "closing";
  }

  /** @internal Why the channel closed (undefined while open). */
  get reason(): AmqpError | undefined {
    return this.closeReason;
  }

  /** @internal */ async open(wait?: WaitOptions): Promise<void> {
    try {
      await this.call({ name: "channel.open" }, { ...wait, opening: true });
    } catch (e) {
      // Aborted after channel.open went out: close the channel the broker opens (its id is freed on close-ok).
      if (e instanceof AbortError && this.state === "opening") this.abandon(e);
      throw e;
    }
    if (this.state === "opening") this.state = "open";
  }

  /** The one way a synchronous request goes out; resolves with its reply. */
  private call<M extends RequestMethod>(
    method: M,
    options: SyncCallOptions<ReplyTo<M>> & Phase = {},
  ): Promise<ReplyTo<M>> {
    return this.request(method.name, options, (timeout) => this.calls.call(method, timeout, options));
  }

  /**
   * What every synchronous request passes before SyncCalls: the channel's state (waiting out a
   * recovery, or refused), the timeout's check, tracing. `send` puts it in line.
   */
  private request<T>(what: string, options: Bounds & Phase, send: (timeout: number) => Promise<T>): Promise<T> {
    const refused = this.refuse(what, options);
    if (refused !== undefined)
      return refused === "wait"
        ? this.recovery!.afterRecovery(what, options.signal, () => this.request(what, options, send))
        : Promise.reject(refused);
    const timeout = options.timeout ?? this.host.options.timeout;
    if (!isTimeout(timeout)) return Promise.reject(badTimeout(what, timeout));
    if (!callTrace.hasSubscribers) return send(timeout);
    return traced(callTrace, { server: this.server, channel: this.id, method: what }, () => send(timeout));
  }

  /** Why a call may not go out now: "wait" for a recovery, or the error it rejects with. */
  private refuse(what: string, options: Phase & { signal?: AbortSignal | undefined }): "wait" | Error | undefined {
    const { opening = false, closing = false } = options;
    const s = this.state;
    if ((s === "recovering" || s === "restoring") && !opening) return "wait";
    if (s === "closed" || s === "closing" || (s === "opening" && !opening) || (this.host.closing && !closing))
      return this.closedError();
    if (options.signal?.aborted) return new AbortError(`${what} aborted before it was sent`);
    return undefined;
  }

  /** Where the broker is, for tracing (diagnostics.ts). */
  private get server(): Server {
    return { address: this.host.options.hostname, port: this.host.options.port };
  }

  // -------------------------------------------------------------------------------------------
  // exchange and queue

  /** exchange.declare. Type: "direct", "fanout", "topic", "headers", or a plugin's type. */
  async exchangeDeclare(exchange: string, type: string, options: ExchangeDeclareOptions = {}): Promise<void> {
    const declared = {
      type,
      durable: options.durable ?? false,
      autoDelete: options.autoDelete ?? false,
      internal: options.internal ?? false,
      arguments: options.arguments ?? {},
    };
    const passive = options.passive ?? false;
    await this.call({ name: "exchange.declare", exchange, passive, noWait: false, ...declared }, options);
    if (!passive) this.topology?.exchangeDeclared(exchange, declared);
  }

  /** exchange.delete; `ifUnused`: only when no queue or exchange is bound to it. */
  async exchangeDelete(exchange: string, options: { ifUnused?: boolean } & WaitOptions = {}): Promise<void> {
    await this.call({ name: "exchange.delete", exchange, ifUnused: options.ifUnused ?? false, noWait: false }, options);
    this.topology?.exchangeDeleted(exchange);
  }

  /** Route messages from `source` to `destination` (RabbitMQ exchange-to-exchange binding). */
  async exchangeBind(
    destination: string,
    source: string,
    routingKey = "",
    args: FieldTable = {},
    wait?: WaitOptions,
  ): Promise<void> {
    await this.call({ name: "exchange.bind", destination, source, routingKey, noWait: false, arguments: args }, wait);
    this.topology?.bound({ kind: "exchange", destination, source, routingKey, arguments: args });
  }

  /** Remove an exchange-to-exchange binding (exchange.unbind). */
  async exchangeUnbind(
    destination: string,
    source: string,
    routingKey = "",
    args: FieldTable = {},
    wait?: WaitOptions,
  ): Promise<void> {
    await this.call({ name: "exchange.unbind", destination, source, routingKey, noWait: false, arguments: args }, wait);
    this.topology?.unbound({ kind: "exchange", destination, source, routingKey, arguments: args });
  }

  /** queue.declare; "" asks the broker to name the queue (returned as `queue`). */
  async queueDeclare(queue = "", options: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    const declared = {
      durable: options.durable ?? false,
      exclusive: options.exclusive ?? false,
      autoDelete: options.autoDelete ?? false,
      arguments: queueArguments(options),
    };
    const passive = options.passive ?? false;
    const m = await this.call({ name: "queue.declare", queue, passive, noWait: false, ...declared }, options);
    if (!passive) this.topology?.queueDeclared(queue, m.queue, declared);
    if (declared.arguments["x-queue-mode"] !== undefined && brokerAtLeast(this.host.serverProperties, 3, 12)) {
      this.warn(
        new IgnoredArgumentWarning(
          "x-queue-mode",
          `queue ${JSON.stringify(m.queue)} was declared with x-queue-mode, which RabbitMQ 3.12 and later ignore (every classic queue keeps its messages on disk, as lazy ones did); leave it out`,
        ),
      );
    }
    return { queue: m.queue, messageCount: m.messageCount, consumerCount: m.consumerCount };
  }

  /** queue.bind: route messages from `exchange` with `routingKey` to `queue`. */
  async queueBind(
    queue: string,
    exchange: string,
    routingKey = "",
    args: FieldTable = {},
    wait?: WaitOptions,
  ): Promise<void> {
    await this.call({ name: "queue.bind", queue, exchange, routingKey, noWait: false, arguments: args }, wait);
    this.topology?.bound({ kind: "queue", destination: queue, source: exchange, routingKey, arguments: args });
  }

  /** queue.unbind: remove a binding made with queueBind(). */
  async queueUnbind(
    queue: string,
    exchange: string,
    routingKey = "",
    args: FieldTable = {},
    wait?: WaitOptions,
  ): Promise<void> {
    await this.call({ name: "queue.unbind", queue, exchange, routingKey, arguments: args }, wait);
    this.topology?.unbound({ kind: "queue", destination: queue, source: exchange, routingKey, arguments: args });
  }

  /** Remove every ready message; returns how many. */
  async queuePurge(queue: string, wait?: WaitOptions): Promise<{ messageCount: number }> {
    const m = await this.call({ name: "queue.purge", queue, noWait: false }, wait);
    return { messageCount: m.messageCount };
  }

  /** queue.delete; `ifUnused` / `ifEmpty`: only without consumers / messages. Returns how many messages it held. */
  async queueDelete(
    queue: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } & WaitOptions = {},
  ): Promise<{ messageCount: number }> {
    const m = await this.call(
      {
        name: "queue.delete",
        queue,
        ifUnused: options.ifUnused ?? false,
        ifEmpty: options.ifEmpty ?? false,
        noWait: false,
      },
      options,
    );
    this.topology?.queueDeleted(queue);
    return { messageCount: m.messageCount };
  }

  // -------------------------------------------------------------------------------------------
  // publishing (publishing.ts)

  /**
   * basic.publish. Resolves once the frames are handed to a socket that is below its
   * high-water mark (so awaiting it is backpressure); in confirm mode once the broker acks
   * (with `options.onConfirm`, every outcome goes there instead, and the promise only resolves:
   * PublishOptions.onConfirm). Rejects on nack (NackError), on a channel or connection that
   * closes first, and on a bad argument (TypeError/RangeError naming it; nothing is sent).
   *
   * With recovery: a publish made while the connection is down waits until the channel is back
   * (at most recovery.waitTimeout, then TimeoutError; `options.signal` ends the wait with
   * AbortError), then goes out in the order it was made. An unconfirmed publish when the
   * connection is lost rejects with the loss reason (a recoverable ConnectionClosedError), or with
   * recovery.republishUnconfirmed is sent again and resolves on the new connection's confirm.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: string | Uint8Array,
    options: PublishOptions = {},
  ): Promise<void> {
    return this.publishing.publish(exchange, routingKey, body, options);
  }

  /** @internal Told of each basic.ack and basic.nack from the broker, after the publishes it settles (warren/amqplib's "ack" and "nack" events). */
  confirmFrames: ((m: MethodOf<"basic.ack"> | MethodOf<"basic.nack">) => void) | undefined;

  /** @internal A publish nobody waits on: no promise made when it can be written now (publishing.ts). */
  publishUnawaited(
    exchange: string,
    routingKey: string,
    body: string | Uint8Array,
    options: PublishOptions,
  ): Promise<void> | undefined {
    return this.publishing.publishUnawaited(exchange, routingKey, body, options);
  }

  /**
   * Publish each message in order, as publish() would one by one, with one promise for all: it
   * resolves once every message is handed to the socket and the socket is below its high-water
   * mark again (in confirm mode, once every message is acked), and otherwise rejects, once every
   * message has settled, with PublishBatchError naming each that failed by its index and why
   * (NackError, ReturnedError, a close reason, a bad argument). Nothing is made per message to
   * wait on: the fast way to publish many with confirms. In confirm mode the batch waits as
   * publish() does for room in the window (maxUnconfirmed), in order; outside it, the whole
   * batch is written at once (awaiting it is the backpressure between batches). A message with
   * a signal or timeout of its own, and every one after it, goes through publish(), as do all
   * while the channel waits for channel.flow, a queued confirm.select or a recovery.
   */
  publishBatch(messages: readonly Publication[]): Promise<void> {
    return this.publishing.publishBatch(messages);
  }

  /**
   * Put the channel in confirm mode: every publish made after this call resolves on the broker's
   * ack, those made before select-ok arrives included. While confirm.select waits its turn behind
   * another synchronous call, publishes wait and go out after it. `maxUnconfirmed` bounds
   * the publishes awaiting their confirm (see ConfirmSelectOptions).
   */
  confirmSelect(options: ConfirmSelectOptions = {}): Promise<void> {
    return this.publishing.confirmSelect(options);
  }

  /**
   * Resolves when every publish so far has been acked or nacked. Rejects with the close reason
   * if the channel or connection goes first: the publishes still unconfirmed then never will be.
   * `timeout` (ms; TimeoutError) and `signal` (AbortError) bound the wait; the publishes
   * themselves stay pending and are still confirmed.
   */
  waitForConfirms(options: WaitOptions = {}): Promise<void> {
    return this.publishing.waitForConfirms(options);
  }

  // -------------------------------------------------------------------------------------------
  // consuming

  /**
   * basic.qos. RabbitMQ reads `global: false` as a limit per consumer (for consumers started
   * after this call) and `global: true` as one limit shared by the channel (per_consumer_qos).
   * RabbitMQ 4.3 and later deny `global_qos` by default: they answer qos-ok and apply the
   * limit per consumer, so warren emits a "warning" (DeprecatedFeatureWarning) there.
   */
  async prefetch(count: number, options: { global?: boolean; size?: number } & WaitOptions = {}): Promise<void> {
    await this.call(
      { name: "basic.qos", prefetchSize: options.size ?? 0, prefetchCount: count, global: options.global ?? false },
      options,
    );
    if (options.global === true && brokerAtLeast(this.host.serverProperties, 4, 3)) {
      this.warn(
        new DeprecatedFeatureWarning(
          "global_qos",
          `prefetch(${count}, { global: true }) on channel ${this.id} is applied per consumer, not shared by the channel`,
        ),
      );
    }
    this.tags.prefetch(count);
    if (options.global !== true) this.perConsumerPrefetch = count;
    this.recovery?.record.qos(count, options.size ?? 0, options.global ?? false);
  }

  /** Start a consumer that calls `onMessage` per delivery (see consumer.ts). */
  consume(queue: string, onMessage: (msg: Message) => unknown, options?: ConsumeOptions): Promise<Consumer>;
  /** Start a consumer read with `for await`; `break` cancels it. */
  consume(queue: string, options?: ConsumeOptions): MessageStream;
  consume(
    queue: string,
    a?: ((msg: Message) => unknown) | ConsumeOptions,
    b?: ConsumeOptions,
  ): Promise<Consumer> | MessageStream {
    if (typeof a !== "function") return new MessageStream(this.streamHost(), queue, a ?? {});
    try {
      return new Consumer(this.consumerChannel(), queue, a, b ?? {}).start();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** What a consumer iterator needs of its channel (consumer.ts). */
  private streamHost(): StreamHost {
    return {
      startConsumer: (queue, sink, options) => this.startConsumer(queue, sink, options),
      cancel: (tag) => this.cancel(tag),
      giveBack: (msgs) => this.giveBack(msgs),
      processContext: (queue, message) =>
        ({ server: this.server, channel: this.id, queue, message }) satisfies ProcessContext,
      pauseReading: () => this.host.pauseReading(),
      resumeReading: () => this.host.resumeReading(),
    };
  }

  /** What a callback consumer needs of its channel (consumer.ts). */
  private consumerChannel(): ConsumerChannel {
    const self = this;
    return {
      ...this.streamHost(),
      channel: this,
      get closed() {
        return self.closed;
      },
      get connectionOpen() {
        return !self.host.closing && self.host.reason === undefined;
      },
      get consumerPrefetch() {
        return self.perConsumerPrefetch;
      },
      get timeout() {
        return self.host.options.timeout;
      },
      prefetch: (count) => this.prefetch(count),
      queueDeclare: (queue, options) => this.queueDeclare(queue, options),
      queueExists: (queue) => this.queueExists(queue),
      openSibling: async () => (await this.host.openChannel(true)).consumerChannel(),
      consumerFailed: (err, msg) =>
        emitOrWarn(
          this,
          "consumerError",
          [err, msg],
          () =>
            `warren: a consumer callback failed on channel ${this.id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        ),
      heldTooLong: (msg, heldFor, consumerTimeout) =>
        emitOrWarn(
          this,
          "consumerTimeoutWarning",
          [msg, heldFor],
          () =>
            `warren: delivery ${msg.fields.deliveryTag} on channel ${this.id} has been held unacknowledged for ${heldFor} ms of a ${consumerTimeout} ms consumer timeout`,
        ),
    };
  }

  /** A passive declare on a side channel: a 404 closes that one, not this. */
  private async queueExists(queue: string): Promise<boolean> {
    const side = await this.host.openChannel(false);
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

  private warn(w: DeprecatedFeatureWarning | IgnoredArgumentWarning): void {
    emitOrWarn(this, "warning", [w], () => w);
  }

  /**
   * basic.consume; the sink is registered before any later frame is read (deliveries may follow
   * consume-ok in the same chunk). A stream consumer's sink started again (healing) resumes
   * after the last offset it was given.
   */
  private async startConsumer(queue: string, sink: ConsumerSink, options: ConsumeOptions): Promise<string> {
    const stream = streamPosition(sink, options);
    const args = stream === undefined ? options : { ...options, arguments: resumeArguments(options.arguments, stream) };
    const m = await this.call(consumeMethod(queue, options.consumerTag ?? "", args), {
      onReply: ({ consumerTag }) => {
        this.recovery?.record.consumer(consumerTag, queue, options, stream);
        this.consumers.add(consumerTag, stream !== undefined ? trackStreamOffset(sink, stream) : sink);
      },
    });
    return m.consumerTag;
  }

  /** basic.cancel: once it resolves, the consumer gets nothing more. */
  async cancel(consumerTag: string, wait?: WaitOptions): Promise<void> {
    await this.cancelConsumer(consumerTag, wait ?? {});
  }

  private async cancelConsumer(consumerTag: string, options: WaitOptions & Phase): Promise<void> {
    if (this.consumers.get(consumerTag) === undefined) return;
    await this.call(
      { name: "basic.cancel", consumerTag, noWait: false },
      {
        ...options,
        onReply: () => {
          this.recovery?.record.drop(consumerTag);
          this.consumers.remove(consumerTag)?.end(undefined);
        },
      },
    );
  }

  private async cancelAll(options: Phase): Promise<void> {
    await Promise.all(this.consumers.tags().map((tag) => this.cancelConsumer(tag, options).catch(() => undefined)));
  }

  /** basic.get: one message, or null when the queue is empty. */
  get(queue: string, options: { noAck?: boolean } & WaitOptions = {}): Promise<Message | null> {
    const method = { name: "basic.get", queue, noAck: options.noAck ?? false } as const;
    return this.request(method.name, options, (timeout) => this.calls.get(method, timeout, options));
  }

  /** basic.recover: redeliver every unacked message (requeue true: possibly to other consumers). */
  async recover(options: { requeue?: boolean } & WaitOptions = {}): Promise<void> {
    await this.call(
      { name: "basic.recover", requeue: options.requeue ?? true },
      { ...options, onReply: () => this.tags.redelivered() },
    );
  }

  // -------------------------------------------------------------------------------------------
  // settling

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
    return this.settleOnce(msg, "basic.nack", (deliveryTag) =>
      this.tags.settle({
        name: "basic.nack",
        deliveryTag,
        multiple: options.multiple ?? false,
        requeue: options.requeue ?? true,
      }),
    );
  }

  /** basic.reject: this delivery failed; requeue defaults to true. Counted toward x-delivery-limit on every RabbitMQ (Message.reject). */
  reject(msg: Message | number, options: { requeue?: boolean } = {}): AmqpError | undefined {
    return this.settleOnce(msg, "basic.reject", (deliveryTag) =>
      this.tags.settle({ name: "basic.reject", deliveryTag, requeue: options.requeue ?? true }),
    );
  }

  /**
   * Acknowledge every delivery outstanding on this channel (basic.ack with delivery tag 0 and
   * multiple: spec basic.ack). Returns undefined, or the close error of a closed channel.
   */
  ackAll(): AmqpError | undefined {
    if (!this.settles()) return this.closedError();
    this.tags.settleAll({ name: "basic.ack" });
    return undefined;
  }

  /** basic.nack of every delivery outstanding on this channel (requeue, the default, or drop them). */
  nackAll(options: { requeue?: boolean } = {}): AmqpError | undefined {
    if (!this.settles()) return this.closedError();
    this.tags.settleAll({ name: "basic.nack", requeue: options.requeue ?? true });
    return undefined;
  }

  /**
   * The one way a user's ack, nack or reject goes out. Refused, with the reason returned, when
   * the broker would close the channel for it (406 PRECONDITION_FAILED): `msg` came on another
   * channel, or it is settled already (see isSettled). Sent on an open channel, or one that
   * recovery has opened again and is restoring (its fresh deliveries must be settled, or a full
   * prefetch window stalls the consumer); never once the connection is closing.
   */
  private settleOnce(
    msg: Message | number,
    what: string,
    send: (tag: number) => AmqpError | undefined,
  ): AmqpError | undefined {
    if (!this.settles()) return this.closedError();
    const tag = tagOf(msg);
    if (msg instanceof Delivery && msg.channel !== this)
      return new AmqpError(`${what} of delivery ${tag}: it came on another channel, and delivery tags are per channel`);
    if (this.isSettled(msg, tag))
      return new AmqpError(
        `${what} of delivery ${tag}: it is settled already (acked, nacked, rejected, covered by a multiple ack, or delivered with noAck), and a second settle would close the channel (406)`,
      );
    const err = send(tag);
    if (err === undefined && msg instanceof Delivery) msg.settled = true;
    return err;
  }

  /** Whether a settle can be sent now: see settleOnce. */
  private settles(): boolean {
    return (this.state === "open" || this.state === "restoring") && !this.host.closing;
  }

  /** @internal Settled through this channel, or covered by the acked-through tag (delivery-tags.ts). */
  isSettled(msg: Message | number, tag = tagOf(msg)): boolean {
    return (msg instanceof Delivery && msg.settled) || this.tags.settled(tag);
  }

  /**
   * Hand back deliveries no consumer will process: basic.nack with requeue, a return, not a
   * failure (RabbitMQ 4.3 counts a basic.reject toward the queue's x-delivery-limit, and not a
   * nack; before 4.3 both count alike), so stopping a consumer never spends a message's delivery
   * limit (delivery-tags.ts giveBack: as few frames as can be). Not a stream's message (it
   * carries `x-stream-offset`): a stream is not consumed by delivery, and RabbitMQ closes the
   * connection (540) on a nack from a stream.
   */
  private giveBack(msgs: readonly Message[]): void {
    // Also while the connection closes (its close cancels the consumers first), until connection.close is out.
    if (!((this.state === "open" || this.state === "restoring") && !this.host.closeSent)) return;
    const tags = msgs
      .filter((m) => m.properties.headers?.["x-stream-offset"] === undefined)
      .map((m) => m.fields.deliveryTag);
    if (tags.length > 0) this.tags.giveBack(tags);
  }

  // -------------------------------------------------------------------------------------------
  // tx

  /** tx.select: publishes and acks on this channel are held until txCommit() (or dropped by txRollback()). */
  async txSelect(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.select" }, wait);
  }
  /** tx.commit: what was published and acked since the last commit takes effect. */
  async txCommit(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.commit" }, wait);
  }
  /** tx.rollback: what was published and acked since the last commit is dropped. */
  async txRollback(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.rollback" }, wait);
  }

  /**
   * Cumulative counts of this channel's publishes and deliveries, and what waits or runs now
   * (stats.ts). Cheap: the counters are kept anyway; this only reads them.
   */
  stats(): ChannelStats {
    const c = this.counts;
    const t = this.tags;
    const w = this.publishing.confirms;
    const { buffered, running } = this.consumers.load();
    return {
      publishes: {
        sent: c.sent,
        confirmed: w.confirmed,
        nacked: w.nacked,
        returned: c.returned,
        timedOut: c.timedOut,
        unconfirmed: w.count,
      },
      deliveries: {
        received: c.received,
        redelivered: c.redelivered,
        acked: t.acked,
        nacked: t.nacked,
        rejected: t.rejected,
        buffered,
        handlersRunning: running,
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // inbound frames

  /** @internal The connection routes each frame of this channel here. */
  onFrame(frame: Frame): void {
    if (this.state === "closed") return this.onFrameAfterClose(frame);
    // Closing: content frames are discarded too: deliveries the broker sent before it read our
    // close cross it on the wire.
    if (this.state === "closing" && frame.type !== FrameType.Method) return;
    switch (frame.type) {
      case FrameType.Method:
        return this.onMethod(frame.method);
      case FrameType.Header:
        if (this.content.header(frame) === TOO_LARGE) this.refuseContent(frame.bodySize);
        return;
      case FrameType.Body:
        return this.content.body(frame.payload);
      default:
        throw new FrameError(503, `heartbeat frame on channel ${this.id}`);
    }
  }

  /**
   * Closed while the id is still taken: our close-ok wait timed out. Drop everything until the
   * broker's close-ok, which frees the id; answer a close of its own.
   */
  private onFrameAfterClose(frame: Frame): void {
    if (frame.type !== FrameType.Method) return;
    if (frame.method.name === "channel.close") this.host.out.method(this.id, { name: "channel.close-ok" });
    else if (frame.method.name === "channel.close-ok") this.host.freeId(this.id);
  }

  private onMethod(m: Method): void {
    if (this.state === "closing") {
      // Discard everything until close-ok; answer a close that crossed ours (RabbitMQ, closing,
      // answers ours too, so close-ok still comes).
      if (m.name === "channel.close-ok") this.finishClose();
      else if (m.name === "channel.close") this.host.out.method(this.id, { name: "channel.close-ok" });
      return;
    }
    if (this.content.expecting)
      throw new FrameError(505, `${m.name} on channel ${this.id} while a message's content was expected`);
    switch (m.name) {
      case "basic.deliver":
      case "basic.return":
        return this.content.begin(m);
      case "basic.get-ok":
        this.calls.expect(m);
        return this.content.begin(m);
      case "basic.get-empty":
        this.calls.expect(m);
        return this.calls.reply(null, m);
      case "basic.ack":
      case "basic.nack":
        if (!this.publishing.inConfirmMode)
          throw new FrameError(505, `${m.name} on channel ${this.id}, which is not in confirm mode`);
        this.publishing.confirmed(m);
        return this.confirmFrames?.(m);
      case "basic.cancel":
        return this.onServerCancel(m);
      case "channel.close":
        return this.onServerClose(m);
      case "channel.flow":
        this.tags.send({ name: "channel.flow-ok", active: m.active });
        return this.publishing.flow(m.active);
      default:
        this.calls.expect(m);
        this.calls.reply(m, m);
    }
  }

  private onContent(m: ContentMethod, properties: BasicProperties, body: Buffer): void {
    switch (m.name) {
      case "basic.deliver": {
        this.counts.delivered(m.redelivered);
        const sink = this.consumers.get(m.consumerTag);
        m.deliveryTag = this.tags.delivered(m.deliveryTag, sink?.noAck === true);
        const msg = new Delivery(this, body, properties, m as DeliveryFields);
        if (sink !== undefined) return sink.deliver(msg);
        // For a consumer that ended lately, still in flight: give it back rather than leave it
        // unacked. For a tag we never had, nothing sensible can be done but drop it.
        if (this.consumers.owesBack(m.consumerTag)) this.giveBack([msg]);
        return;
      }
      case "basic.get-ok": {
        this.counts.delivered(m.redelivered);
        const noAck = (this.calls.current as MethodOf<"basic.get"> | undefined)?.noAck === true;
        m.deliveryTag = this.tags.delivered(m.deliveryTag, noAck);
        return this.calls.reply(new Delivery(this, body, properties, m as DeliveryFields));
      }
      case "basic.return":
        this.counts.returned++;
        this.publishing.returned(m, body);
        this.emit("return", { body, properties, fields: m });
        return;
    }
  }

  private onServerCancel(m: MethodOf<"basic.cancel">): void {
    // Remembered: a quorum queue may still deliver to it (a consumer timeout returns the message
    // and cancels); what comes goes back rather than sit unacked until the channel closes.
    const sink = this.consumers.remove(m.consumerTag);
    this.recovery?.record.drop(m.consumerTag);
    if (!m.noWait) this.tags.send({ name: "basic.cancel-ok", consumerTag: m.consumerTag });
    sink?.end(new ConsumerCancelledError(m.consumerTag));
    this.emit("cancel", m.consumerTag);
  }

  private onServerClose(m: MethodOf<"channel.close">): void {
    const err = closeError("channel", {
      replyCode: m.replyCode,
      replyText: m.replyText,
      classId: m.classId,
      methodId: m.methodId,
      initiatedBy: "server",
    });
    this.tags.dropDeferred(); // the broker has closed the channel: deferred acks are moot, it requeues
    this.host.out.method(this.id, { name: "channel.close-ok" });
    this.host.freeId(this.id);
    this.fail(err);
  }

  // -------------------------------------------------------------------------------------------
  // closing

  /**
   * Close the channel. From the call on, no delivery reaches a handler or callback. Every
   * consumer is cancelled first, so nothing new arrives and what no handler took goes back to
   * the queue (nacked: see stopHandlers); then the handlers still running (of a consumer, or of
   * one cancelled just before) are waited for, at most the timeout, so what they finish is
   * settled before the channel goes. A handler that calls close() itself is not waited for: it
   * waits for the close. Then outstanding publisher confirms are waited for (bounded by the
   * timeout too), so a close right after a burst of publishes loses nothing silently. Once it
   * resolves, no further delivery reaches this channel's consumers.
   */
  close(): Promise<void> {
    const callers = callingSinks(this.consumers.all());
    const closed = this.stopHandlers().then(() => this.closeChannel());
    for (const sink of callers) sink.closing?.(closed);
    return closed;
  }

  private async closeChannel(): Promise<void> {
    if (this.state === "closed") return;
    // The connection's close closes this channel too; a channel.close now would follow connection.close.
    if (this.host.closing || this.state === "closing") return this.closedEvent();
    if (this.state === "recovering" || this.state === "restoring") {
      // Being re-opened right now: let that finish, then close it on the broker as usual.
      const restore = this.recovery!.inProgress;
      if (restore) {
        await restore.catch(() => undefined);
        return this.closeChannel();
      }
      // Nothing to tell a broker that has never seen this channel on the new connection.
      this.host.freeId(this.id);
      this.fail(clientClose("channel"));
      return;
    }
    if (this.publishing.confirms.count > 0) {
      await this.publishing.waitForConfirms({ timeout: this.host.options.timeout }).catch(() => undefined);
      if (this.state !== "open") return;
    }
    const done = this.closedEvent();
    this.beginClose(clientClose("channel"), ReplyCode.REPLY_SUCCESS, CLIENT_CLOSE);
    return done;
  }

  /** `await using ch = await conn.openChannel()`: closed at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private closedEvent(): Promise<void> {
    return new Promise<void>((resolve) => this.once("close", () => resolve()));
  }

  private beginClose(reason: AmqpError, code: number, text: string): void {
    this.closeReason = reason;
    this.state = "closing";
    // A delivery half-assembled now is dropped with the rest of its frames (see onFrame).
    this.content.reset();
    this.tags.send({ name: "channel.close", replyCode: code, replyText: text.slice(0, 255), classId: 0, methodId: 0 });
    // If close-ok is slow, the caller is not kept waiting: the channel is closed for the user, but
    // its id stays taken until close-ok does come (onFrameAfterClose), so what the broker still
    // sends on it is dropped instead of taken for a frame on a channel that is not open (504,
    // which would close the whole connection).
    this.closeTimer = setTimeout(() => this.fail(reason), this.host.options.timeout);
    this.closeTimer.unref();
    this.rejectPending(reason);
  }

  /**
   * A content header declares a body over maxMessageSize: buffering it is what a hostile peer
   * would want. Close this channel with 311 content-too-large instead (the connection carries
   * on); while closing, the body frames are dropped unread, and the broker requeues the delivery.
   */
  private refuseContent(size: number): void {
    const text = `a message body of ${size} bytes is over maxMessageSize (${this.host.options.maxMessageSize})`;
    this.beginClose(
      new ChannelClosedError({ replyCode: ReplyCode.CONTENT_TOO_LARGE, replyText: text, initiatedBy: "library" }),
      ReplyCode.CONTENT_TOO_LARGE,
      text,
    );
  }

  /** Close the channel because warren can no longer trust its state (a timed-out call). */
  private abandon(reason: AmqpError): void {
    this.beginClose(reason, ReplyCode.REPLY_SUCCESS, reason.message);
  }

  private finishClose(): void {
    this.host.freeId(this.id);
    this.fail(this.closeReason!);
  }

  private rejectPending(reason: AmqpError): void {
    this.calls.fail(reason);
    this.publishing.fail(reason);
    this.consumers.endAll(isClientClose(reason) ? undefined : reason);
    this.recovery?.fail(reason);
  }

  /**
   * @internal The one way to closed: idempotent; rejects everything pending with `reason` and
   * emits "close" (with undefined when this client closed the channel).
   */
  fail(reason: AmqpError): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closeReason = reason;
    clearTimeout(this.closeTimer);
    this.tags.dropDeferred();
    this.content.reset();
    this.rejectPending(reason);
    this.consumers.forgetCancelled();
    this.emit("close", isClientClose(reason) ? undefined : reason);
  }

  private closedError(): AmqpError {
    const lost = this.state === "recovering" ? this.recovery?.reason : undefined;
    return (
      lost ??
      this.closeReason ??
      this.host.reason ??
      new ChannelClosedError({ replyCode: 0, replyText: "channel is not open", initiatedBy: "library" })
    );
  }

  // -------------------------------------------------------------------------------------------
  // what the connection does to its channels

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
    if (this.consumers.busy)
      await Promise.all(this.consumers.all().map((sink) => sink.drain?.(this.host.options.timeout)));
  }

  /** @internal The connection closes: cancel every consumer first (see stopHandlers), with the close's own calls. */
  async cancelConsumers(): Promise<void> {
    if (this.state === "open") await this.cancelAll({ closing: true });
  }

  /** @internal The connection was lost and this channel waits to be restored. */
  get recovering(): boolean {
    return this.state === "recovering";
  }

  /**
   * @internal The connection was lost and will be recovered (channel-recovery.ts). Returns false
   * when the channel just closes instead (it was still opening, or closing).
   */
  suspend(reason: AmqpError): boolean {
    if (this.state === "closed") return false;
    if (this.state === "opening" || this.state === "closing") {
      this.fail(this.state === "closing" ? (this.closeReason ?? reason) : reason);
      return false;
    }
    this.recovery!.suspend(reason);
    return true;
  }

  /** @internal Recovery: open this channel again (same id) on the new connection and put back what it had. */
  restore(): Promise<void> {
    return this.recovery!.restore();
  }
}

/** Whether the broker's connection.start says it is RabbitMQ `major.minor` or later. */
function brokerAtLeast(serverProperties: FieldTable, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(String(serverProperties["version"] ?? ""));
  if (m === null) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}
