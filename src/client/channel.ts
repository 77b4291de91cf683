/**
 * A channel: the state machine (opening -> open -> closing -> closed), synchronous methods
 * one at a time, content assembly, consumers, publisher confirms and returns.
 *
 * Invariants kept here:
 * - At most one synchronous method is in flight (spec 2.3.? "channels": a peer must wait for the
 *   reply before sending the next synchronous method on a channel); later calls wait in a FIFO,
 *   each knowing the replies it accepts. Any other reply is 505 UNEXPECTED_FRAME.
 * - Content arrives as method -> header -> body* (4.2.6); any other order is 505, and a body
 *   longer than its header declared is 501.
 * - Once closing or closed, frames other than close/close-ok are dropped (spec "channel.close":
 *   "the peer MUST discard all frames until it receives close-ok"), so no delivery reaches a
 *   consumer after close() resolves.
 * - One failure path, `fail(reason)`: it rejects the call in flight, the queued calls, the
 *   unconfirmed publishes and ends every consumer with the same reason.
 */
import { EventEmitter } from "node:events";
import { FrameType, ReplyCode } from "../protocol/constants.js";
import { FrameError } from "../protocol/errors.js";
import type { Frame } from "../protocol/frame.js";
import type { Method, MethodName, MethodOf } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";
import type { FieldTable } from "../protocol/table.js";
import type { Connection } from "./connection.js";
import { MessageStream, type ConsumeOptions, type Consumer, type ConsumerSink } from "./consumer.js";
import { AbortError, AmqpError, ChannelClosedError, ConsumerCancelledError, DeprecatedFeatureWarning, NackError, TimeoutError, closeError, isClientClose } from "./errors.js";
import type { DeliveryFields, Message, ReturnedMessage } from "./message.js";
import { ChannelRecord, ResumeGate, resumeArguments, type ConsumerRecord, type Topology } from "./recovery.js";
import { MAX_TIMER_MS, isTimeout } from "./timer.js";

export interface ExchangeDeclareOptions extends WaitOptions {
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  /** Only check that it exists (404 if not). */
  passive?: boolean;
  arguments?: FieldTable;
}
export interface QueueDeclareOptions extends WaitOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  passive?: boolean;
  /** x-queue-type, x-message-ttl, x-max-length, x-dead-letter-exchange, ... */
  arguments?: FieldTable;
  /**
   * x-queue-type: "classic", "quorum" (replicated, durable; the kind the official tutorials
   * use now) or "stream". Overrides `arguments`.
   */
  queueType?: "classic" | "quorum" | "stream";
  /** x-delivery-limit (quorum): deliveries after which a message is dead-lettered or dropped. */
  deliveryLimit?: number;
  /** x-dead-letter-strategy (quorum): "at-most-once" (the default) or "at-least-once". */
  deadLetterStrategy?: "at-most-once" | "at-least-once";
}
export interface PublishOptions extends BasicProperties {
  /** Return the message (the "return" event) if no queue takes it. */
  mandatory?: boolean;
  /**
   * Stops the publish's waits with AbortError: held by channel.flow (then it is never sent),
   * for the socket to drain or the connection to be unblocked, for the broker's confirm, or
   * (with recovery) for the connection to come back. Aborted after it was sent, the message may
   * still reach the broker.
   */
  signal?: AbortSignal;
}
export interface QueueDeclareResult {
  queue: string;
  messageCount: number;
  consumerCount: number;
}

export interface ChannelEvents {
  /** A mandatory publish could not be routed. */
  return: [msg: ReturnedMessage];
  /** The channel closed; err is undefined for a close by this client. */
  close: [err: AmqpError | undefined];
  /** The broker cancelled a consumer (consumer_cancel_notify). */
  cancel: [consumerTag: string];
  /** A consumer callback threw or rejected. Without a listener, the error is printed as a process warning. */
  consumerError: [err: unknown, msg: Message];
  /** The broker will not do what a call asked, though it answered ok. Without a listener, a process warning. */
  warning: [warning: DeprecatedFeatureWarning];
}

/**
 * "recovering": the connection was lost and automatic recovery will open this channel again
 * (recovery.ts). "restoring": it is open again on the broker, and recovery is putting back its
 * prefetch, consumers and confirm mode; deliveries of the new channel can be settled, the
 * user's other calls wait until it is "open".
 */
type State = "opening" | "open" | "closing" | "closed" | "recovering" | "restoring";

/** A synchronous method (spec 1.5: a request that waits for its own reply), queued or in flight. */
interface SyncCall {
  method: Method;
  replies: readonly MethodName[];
  resolve: (m: Method | Message | null) => void;
  reject: (e: unknown) => void;
  /** Runs synchronously as the method is written, before any later frame of this channel. */
  onSend?: (() => void) | undefined;
  /** Runs synchronously when the reply arrives, before any later frame is handled. */
  onReply?: ((m: Method) => void) | undefined;
  /** ms to wait for the reply once sent. */
  timeout: number;
}

/** How call() runs one synchronous method. */
interface CallOptions extends WaitOptions {
  /** Recovery's and open()'s own calls: they go out while the channel is not (yet) open. */
  opening?: boolean;
  onSend?: () => void;
  onReply?: (m: Method) => void;
}

/**
 * Bounds on one synchronous call: `timeout` (ms, default the connection's `timeout`) ends the
 * wait for the reply with TimeoutError (the channel is then closed: a late reply would answer
 * the wrong call); `signal` ends it with AbortError -- a call still queued is never sent, a call
 * already sent may still take effect on the broker (its reply is read and dropped).
 */
export interface WaitOptions {
  timeout?: number;
  signal?: AbortSignal;
}

interface Deferred {
  resolve: () => void;
  reject: (e: unknown) => void;
  /** With recovery.republishUnconfirmed: what to publish again if the connection is lost first. */
  args?: [exchange: string, routingKey: string, body: Uint8Array, options: PublishOptions];
}

const RESOLVED: Promise<void> = Promise.resolve();
/** How many cancelled consumer tags a channel remembers (rememberCancelled). */
const REMEMBERED_CANCELS = 16;

export class Channel extends EventEmitter<ChannelEvents> {
  readonly id: number;
  readonly connection: Connection;
  private state: State = "opening";
  private closeReason: AmqpError | undefined;

  private readonly queue: SyncCall[] = [];
  private inFlight: SyncCall | undefined;
  private callTimer: NodeJS.Timeout | undefined;

  // content being assembled: method, then header, then bodies
  private contentMethod: MethodOf<"basic.deliver"> | MethodOf<"basic.get-ok"> | MethodOf<"basic.return"> | undefined;
  private contentProps: BasicProperties | undefined;
  private contentSize = 0;
  private contentChunks: Buffer[] = [];
  private contentReceived = 0;

  private readonly consumers = new Map<string, ConsumerSink>();
  /** Consumers cancelled by us whose late deliveries must go back (noAck false) or be dropped. */
  private readonly cancelled = new Map<string, boolean>();

  // publisher confirms: publishes are numbered from 1 after confirm.select (RabbitMQ "Publisher Confirms")
  private confirming = false;
  private unconfirmed: (Deferred | undefined)[] = [];
  private unconfirmedBase = 1; // sequence number of unconfirmed[0]
  /** unconfirmed[0 .. head) are all settled (holes), waiting for the next compaction. */
  private unconfirmedHead = 0;
  private unconfirmedCount = 0;
  /** waitForConfirms() callers: called empty once all is settled, with the reason if the channel goes first. */
  private settledWaiters: ((err?: AmqpError) => void)[] = [];

  // Ack coalescing. Delivery tags are per channel and sequential from 1 (spec basic.deliver,
  // "delivery-tag"). `settledThrough` is the highest tag T such that every tag <= T is settled:
  // acked, rejected, or delivered in no-ack mode. While the user acks in that order, the acks
  // are held as one `pendingAck` and written as a single basic.ack(multiple) at the next
  // flush: the broker's state afterwards is exactly that of the individual acks, but it parses
  // one frame instead of hundreds. Any other frame on this channel writes the held ack first,
  // so ordering is kept.
  private settledThrough = 0;
  private lastDeliveryTag = 0;
  /** @internal */ pendingAck = 0;
  /** @internal The first tag of the acks held now. */
  ackHeldFrom = 0;
  /** @internal How many acks may be held across socket reads: a quarter of the prefetch (connection.flushTick). */
  ackBatch = 1;

  // channel.flow from the broker
  private flowActive = true;
  /** A confirm.select waits behind another sync call: publishes are held until it is written. */
  private selectQueued = false;
  /** Publishes held by channel.flow or a queued confirm.select, in their order (holdPublish). */
  private heldPublishes: ((err?: AmqpError) => void)[] = [];

  // Automatic recovery (recovery.ts); all undefined/zero without it. Delivery tags restart at 1 on
  // the new channel, so they are shifted by `tagOffset` (the last tag before the loss) both ways.
  /** @internal What this channel set up (prefetch, consumers), to set it up again. */
  readonly record: ChannelRecord | undefined;
  /** @internal false on recovery's own channel, whose declares must not be recorded. */
  recordTopology = true;
  private tagOffset = 0;
  private lostReason: AmqpError | undefined;
  private resumeGate: ResumeGate | undefined;
  private retained: Deferred[] = [];
  private restoring: Promise<void> | undefined;
  private readonly retainPublishes: boolean;

  /** @internal use connection.openChannel() */
  constructor(connection: Connection, id: number) {
    super();
    this.connection = connection;
    this.id = id;
    this.record = connection.recovery ? new ChannelRecord(connection.recovery.topology) : undefined;
    this.retainPublishes = connection.recovery?.republishUnconfirmed ?? false;
  }

  /** The recorded topology of a recovering connection (not for recovery's own channel). */
  private get topology(): Topology | undefined {
    return this.recordTopology ? this.connection.recovery?.topology : undefined;
  }

  /** True once the channel is closed; calls then fail with its close reason. */
  get closed(): boolean {
    return this.state === "closed" || this.state === "closing";
  }

  /** @internal Why the channel closed (undefined while open). */
  get reason(): AmqpError | undefined {
    return this.closeReason;
  }

  /** @internal */
  async open(wait?: WaitOptions): Promise<void> {
    try {
      await this.call({ name: "channel.open" }, ["channel.open-ok"], { ...wait, opening: true });
    } catch (e) {
      // Aborted after channel.open went out: the broker will open it, so close it again (the id
      // is freed on close-ok) rather than leave an open channel nobody holds.
      if (e instanceof AbortError && this.state === "opening") this.abandon(e);
      throw e;
    }
    if (this.state === "opening") this.state = "open";
  }

  // -------------------------------------------------------------------------------------------
  // synchronous methods

  private call(method: Method, replies: readonly MethodName[], options: CallOptions = {}): Promise<Method | Message | null> {
    const { signal, opening = false, onSend, onReply } = options;
    // While recovering, the user's calls wait for the channel to be back; recovery's own pass `opening`.
    if ((this.state === "recovering" || this.state === "restoring") && !opening) return this.afterRecovery(method.name, signal).then(() => this.call(method, replies, options));
    if (this.state === "closed" || this.state === "closing" || (this.state === "opening" && !opening) || this.connection.state === "closing") return Promise.reject(this.closedError());
    if (signal?.aborted) return Promise.reject(new AbortError(`${method.name} aborted before it was sent`));
    const timeout = options.timeout ?? this.connection.options.timeout;
    if (!isTimeout(timeout)) return Promise.reject(badTimeout(method.name, timeout));
    if (signal === undefined) {
      return new Promise((resolve, reject) => {
        this.queue.push({ method, replies, resolve, reject, onSend, onReply, timeout });
        if (this.inFlight === undefined) this.sendNext();
      });
    }
    return new Promise((resolve, reject) => {
      const done = () => signal.removeEventListener("abort", onAbort);
      const call: SyncCall = { method, replies, resolve: (v) => (done(), resolve(v)), reject: (e) => (done(), reject(e)), onSend, onReply, timeout };
      const onAbort = () => {
        const i = this.queue.indexOf(call);
        if (i >= 0) {
          this.queue.splice(i, 1);
          reject(new AbortError(`${method.name} aborted before it was sent`));
          return;
        }
        // Sent: its reply must still be read in turn (one sync method in flight per channel), so
        // the call stays in place and only the caller stops waiting.
        call.resolve = () => undefined;
        call.reject = () => undefined;
        reject(new AbortError(`${method.name} aborted after it was sent: the broker may still act on it`));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(call);
      if (this.inFlight === undefined) this.sendNext();
    });
  }

  private sendNext(): void {
    const next = this.queue.shift();
    if (next === undefined) return;
    try {
      this.send(next.method);
    } catch (e) {
      // A bad argument (a name over 255 bytes...): fail this call only; nothing was written.
      next.reject(e);
      this.sendNext();
      return;
    }
    next.onSend?.();
    this.inFlight = next;
    this.callTimer = setTimeout(() => this.onCallTimeout(next), next.timeout);
  }

  private onCallTimeout(call: SyncCall): void {
    if (this.inFlight !== call) return;
    // The reply may still come, and would then answer the wrong call: the channel is no longer usable.
    const err = new TimeoutError(`${call.method.name} got no reply within ${call.timeout} ms`);
    call.reject(err);
    this.inFlight = undefined;
    this.abandon(err);
  }

  private settleInFlight(value: Method | Message | null, m?: Method): void {
    const call = this.inFlight!;
    clearTimeout(this.callTimer);
    this.inFlight = undefined;
    if (m !== undefined) call.onReply?.(m);
    call.resolve(value);
    this.sendNext();
  }

  // -------------------------------------------------------------------------------------------
  // inbound frames

  /** @internal */
  onFrame(frame: Frame): void {
    if (this.state === "closed") return this.onFrameAfterClose(frame);
    // Closing: every frame but close/close-ok is discarded (spec channel.close), content frames
    // too: deliveries the broker sent before it read our close cross it on the wire.
    if (this.state === "closing" && frame.type !== FrameType.Method) return;
    switch (frame.type) {
      case FrameType.Method:
        return this.onMethod(frame.method);
      case FrameType.Header:
        if (this.contentMethod === undefined || this.contentProps !== undefined) throw new FrameError(505, `content header on channel ${this.id} without a method before it`);
        if (frame.classId !== 60) throw new FrameError(505, `content header for class ${frame.classId}, expected basic (60)`);
        if (frame.bodySize > this.connection.options.maxMessageSize) return this.refuseContent(frame.bodySize);
        this.contentProps = frame.properties;
        this.contentSize = frame.bodySize;
        if (frame.bodySize === 0) this.completeContent(Buffer.alloc(0));
        return;
      case FrameType.Body: {
        if (this.contentProps === undefined) throw new FrameError(505, `content body on channel ${this.id} without a header before it`);
        const received = this.contentReceived + frame.payload.length;
        if (received > this.contentSize) throw new FrameError(501, `content body of ${received}+ bytes is longer than the ${this.contentSize} its header declared`);
        if (received === this.contentSize && this.contentChunks.length === 0) return this.completeContent(frame.payload);
        this.contentChunks.push(frame.payload);
        this.contentReceived = received;
        if (received === this.contentSize) {
          const body = Buffer.concat(this.contentChunks, received);
          this.contentChunks = [];
          this.contentReceived = 0;
          this.completeContent(body);
        }
        return;
      }
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
    if (frame.method.name === "channel.close") this.connection.sendMethod(this.id, { name: "channel.close-ok" });
    else if (frame.method.name === "channel.close-ok") this.connection.releaseChannel(this.id);
  }

  private onMethod(m: Method): void {
    if (this.state === "closing") {
      // Discard everything until close-ok; answer a close that crossed ours (RabbitMQ, closing,
      // answers ours too, so close-ok still comes).
      if (m.name === "channel.close-ok") this.finishClose();
      else if (m.name === "channel.close") this.connection.sendMethod(this.id, { name: "channel.close-ok" });
      return;
    }
    if (this.contentMethod !== undefined) throw new FrameError(505, `${m.name} on channel ${this.id} while a message's content was expected`);
    switch (m.name) {
      case "basic.deliver":
      case "basic.return":
        this.contentMethod = m;
        return;
      case "basic.get-ok":
        this.expectReply(m);
        this.contentMethod = m;
        return;
      case "basic.ack":
      case "basic.nack":
        return this.onConfirm(m.deliveryTag, m.multiple, m.name === "basic.nack");
      case "basic.cancel":
        return this.onServerCancel(m.consumerTag, m.noWait);
      case "channel.close":
        return this.onServerClose(m);
      case "channel.flow":
        return this.onFlow(m.active);
      default:
        this.expectReply(m);
        this.settleInFlight(m, m);
    }
  }

  private expectReply(m: Method): void {
    const call = this.inFlight;
    if (call === undefined || !call.replies.includes(m.name)) {
      throw new FrameError(505, `unexpected ${m.name} on channel ${this.id}${call ? ` (waiting for ${call.replies.join(" or ")})` : ""}`);
    }
  }

  private completeContent(body: Buffer): void {
    const m = this.contentMethod!;
    const properties = this.contentProps!;
    this.contentMethod = undefined;
    this.contentProps = undefined;
    this.contentSize = 0;
    switch (m.name) {
      case "basic.deliver":
        return this.onDeliver({ body, properties, fields: m as DeliveryFields });
      case "basic.get-ok": {
        if (this.tagOffset !== 0) m.deliveryTag += this.tagOffset;
        this.lastDeliveryTag = m.deliveryTag;
        if ((this.inFlight?.method as MethodOf<"basic.get"> | undefined)?.noAck && m.deliveryTag === this.settledThrough + 1) this.settledThrough = m.deliveryTag;
        return this.settleInFlight({ body, properties, fields: m as DeliveryFields });
      }
      case "basic.return":
        this.emit("return", { body, properties, fields: m });
        return;
    }
  }

  private onDeliver(msg: Message): void {
    if (this.tagOffset !== 0) msg.fields.deliveryTag += this.tagOffset;
    const tag = msg.fields.consumerTag!;
    const sink = this.consumers.get(tag);
    const deliveryTag = msg.fields.deliveryTag;
    this.lastDeliveryTag = deliveryTag;
    if (sink !== undefined) {
      if (sink.noAck && deliveryTag === this.settledThrough + 1) this.settledThrough = deliveryTag;
      return sink.deliver(msg);
    }
    // A delivery for a consumer we cancelled, still in flight: give it back rather than leave it
    // unacked. For a tag we never had, nothing sensible can be done but drop it.
    if (this.cancelled.get(tag) === false) this.giveBack(msg);
  }

  /**
   * @internal Hand back a delivery no consumer will process: basic.reject with requeue. Not a
   * stream's message (it carries `x-stream-offset`): a stream is not consumed by delivery, and
   * RabbitMQ closes the connection (540) on a reject from a stream.
   */
  giveBack(msg: Message): void {
    if (msg.properties.headers?.["x-stream-offset"] !== undefined) return;
    this.settle({ name: "basic.reject", deliveryTag: msg.fields.deliveryTag, requeue: true });
  }

  // -------------------------------------------------------------------------------------------
  // exchange

  /** exchange.declare. Type: "direct", "fanout", "topic", "headers", or a plugin's type. */
  async exchangeDeclare(exchange: string, type: string, options: ExchangeDeclareOptions = {}): Promise<void> {
    const declared = { type, durable: options.durable ?? false, autoDelete: options.autoDelete ?? false, internal: options.internal ?? false, arguments: options.arguments ?? {} };
    const passive = options.passive ?? false;
    await this.call({ name: "exchange.declare", exchange, passive, noWait: false, ...declared }, ["exchange.declare-ok"], options);
    if (!passive) this.topology?.exchangeDeclared(exchange, declared);
  }

  async exchangeDelete(exchange: string, options: { ifUnused?: boolean } & WaitOptions = {}): Promise<void> {
    await this.call({ name: "exchange.delete", exchange, ifUnused: options.ifUnused ?? false, noWait: false }, ["exchange.delete-ok"], options);
    this.topology?.exchangeDeleted(exchange);
  }

  /** Route messages from `source` to `destination` (RabbitMQ exchange-to-exchange binding). */
  async exchangeBind(destination: string, source: string, routingKey = "", args: FieldTable = {}, wait?: WaitOptions): Promise<void> {
    await this.call({ name: "exchange.bind", destination, source, routingKey, noWait: false, arguments: args }, ["exchange.bind-ok"], wait);
    this.topology?.bound({ kind: "exchange", destination, source, routingKey, arguments: args });
  }

  async exchangeUnbind(destination: string, source: string, routingKey = "", args: FieldTable = {}, wait?: WaitOptions): Promise<void> {
    await this.call({ name: "exchange.unbind", destination, source, routingKey, noWait: false, arguments: args }, ["exchange.unbind-ok"], wait);
    this.topology?.unbound({ kind: "exchange", destination, source, routingKey, arguments: args });
  }

  // -------------------------------------------------------------------------------------------
  // queue

  /** queue.declare; "" asks the broker to name the queue (returned as `queue`). */
  async queueDeclare(queue = "", options: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    const declared = { durable: options.durable ?? false, exclusive: options.exclusive ?? false, autoDelete: options.autoDelete ?? false, arguments: queueArguments(options) };
    const passive = options.passive ?? false;
    const m = (await this.call({ name: "queue.declare", queue, passive, noWait: false, ...declared }, ["queue.declare-ok"], options)) as MethodOf<"queue.declare-ok">;
    if (!passive) this.topology?.queueDeclared(queue, m.queue, declared);
    return { queue: m.queue, messageCount: m.messageCount, consumerCount: m.consumerCount };
  }

  async queueBind(queue: string, exchange: string, routingKey = "", args: FieldTable = {}, wait?: WaitOptions): Promise<void> {
    await this.call({ name: "queue.bind", queue, exchange, routingKey, noWait: false, arguments: args }, ["queue.bind-ok"], wait);
    this.topology?.bound({ kind: "queue", destination: queue, source: exchange, routingKey, arguments: args });
  }

  async queueUnbind(queue: string, exchange: string, routingKey = "", args: FieldTable = {}, wait?: WaitOptions): Promise<void> {
    await this.call({ name: "queue.unbind", queue, exchange, routingKey, arguments: args }, ["queue.unbind-ok"], wait);
    this.topology?.unbound({ kind: "queue", destination: queue, source: exchange, routingKey, arguments: args });
  }

  /** Remove every ready message; returns how many. */
  async queuePurge(queue: string, wait?: WaitOptions): Promise<{ messageCount: number }> {
    const m = (await this.call({ name: "queue.purge", queue, noWait: false }, ["queue.purge-ok"], wait)) as MethodOf<"queue.purge-ok">;
    return { messageCount: m.messageCount };
  }

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
    if (options.global === true && brokerAtLeast(this.connection.serverProperties, 4, 3)) {
      this.warn(new DeprecatedFeatureWarning("global_qos", `prefetch(${count}, { global: true }) on channel ${this.id} is applied per consumer, not shared by the channel`));
    }
    this.ackBatch = count >= 8 ? count >> 2 : 1;
    this.record?.qos(count, options.size ?? 0, options.global ?? false);
  }

  /**
   * basic.publish. Resolves once the frames are handed to a socket that is below its
   * high-water mark (so awaiting it is backpressure); in confirm mode once the broker acks.
   * Rejects on nack (NackError), on a channel or connection that closes first, and on a bad
   * argument (TypeError/RangeError naming it; nothing is sent).
   *
   * With recovery: a publish made while the connection is down waits until the channel is back
   * (at most recovery.waitTimeout, then TimeoutError; `options.signal` ends the wait with
   * AbortError), then goes out in the order it was made. An unconfirmed publish when the
   * connection is lost rejects with the loss reason (a recoverable ConnectionClosedError), or with
   * recovery.republishUnconfirmed is sent again and settles on the new connection's confirm.
   */
  publish(exchange: string, routingKey: string, body: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    if (this.state === "recovering" || this.state === "restoring") return this.afterRecovery("publish", options.signal).then(() => this.publish(exchange, routingKey, body, options));
    // Once the connection is closing, a publish would follow connection.close, and the broker discards it.
    if (this.state !== "open" || this.connection.state === "closing") return Promise.reject(this.closedError());
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    if (!(bytes instanceof Uint8Array)) return Promise.reject(new TypeError(`publish body must be a string, Buffer or Uint8Array, got ${typeof body}`));
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError("publish aborted before it was sent"));
    // channel.flow active=false (spec 1.5.2.3): the broker asked for no content until it says
    // active again; or confirm.select is queued, and only publishes written after it are
    // counted. The publish is held, not sent; held publishes go out in their order.
    if (!this.flowActive || this.selectQueued) return this.holdPublish(exchange, routingKey, body, options);
    if (this.pendingAck !== 0) this.flushAck();
    try {
      this.connection.sendPublish(this.id, exchange, routingKey, options.mandatory ?? false, options, bytes);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.confirming) {
      this.unconfirmedCount++;
      const confirmed = new Promise<void>((resolve, reject) => this.unconfirmed.push(this.retainPublishes ? { resolve, reject, args: [exchange, routingKey, bytes, options] } : { resolve, reject }));
      return signal ? bounded(confirmed, { signal }, "publish (sent; waiting for the broker's confirm)") : confirmed;
    }
    const written = this.connection.writable();
    return signal ? bounded(written, { signal }, "publish (sent; waiting for the socket to drain or the connection to be unblocked)") : written;
  }

  /** A held publish (see publish); its signal takes it out of the line unsent. */
  private holdPublish(exchange: string, routingKey: string, body: string | Uint8Array, options: PublishOptions): Promise<void> {
    const signal = options.signal;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.heldPublishes.indexOf(waiter);
        if (i >= 0) this.heldPublishes.splice(i, 1);
        reject(new AbortError("publish aborted while held (channel.flow, or a confirm.select waiting its turn): it was not sent"));
      };
      const waiter = (err?: AmqpError) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else this.publish(exchange, routingKey, body, options).then(resolve, reject);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.heldPublishes.push(waiter);
    });
  }

  /** Let the held publishes go, in order, once neither channel.flow nor a queued confirm.select holds them. */
  private releaseHeld(): void {
    if (this.flowActive && !this.selectQueued) for (const w of this.heldPublishes.splice(0)) w();
  }

  /**
   * Put the channel in confirm mode: every publish made after this call resolves on the broker's
   * ack, those made before select-ok arrives included. While confirm.select waits its turn behind
   * another synchronous call, publishes are held and go out after it.
   */
  async confirmSelect(wait?: WaitOptions): Promise<void> {
    // The broker numbers the publishes that follow confirm.select on the wire (RabbitMQ
    // "Publisher Confirms"), not those after select-ok: counting starts as the method is
    // written, and a publish made before that would not be counted, so it waits.
    if (!this.confirming && (this.inFlight !== undefined || this.queue.length > 0)) this.selectQueued = true;
    const written = () => {
      this.confirming = true;
      this.selectQueued = false;
      this.releaseHeld(); // right behind confirm.select on the wire
    };
    try {
      await this.call({ name: "confirm.select", noWait: false }, ["confirm.select-ok"], { ...wait, onSend: written });
    } finally {
      // Never written (aborted, or the channel closed first): the held publishes go on without it.
      if (this.selectQueued) {
        this.selectQueued = false;
        this.releaseHeld();
      }
    }
  }

  /**
   * Resolves when every publish so far has been acked or nacked. Rejects with the close reason
   * if the channel or connection goes first: the publishes still unconfirmed then never will be.
   * `timeout` (ms; TimeoutError) and `signal` (AbortError) bound the wait; the publishes
   * themselves stay pending and still settle.
   */
  waitForConfirms(options: { timeout?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (options.timeout !== undefined && !isTimeout(options.timeout)) return Promise.reject(badTimeout("waitForConfirms", options.timeout));
    if (this.unconfirmedCount === 0) return RESOLVED;
    const settled = new Promise<void>((resolve, reject) => this.settledWaiters.push((err) => (err ? reject(err) : resolve())));
    return options.timeout === undefined && options.signal === undefined ? settled : bounded(settled, options, "waitForConfirms");
  }

  private onConfirm(tag: number, multiple: boolean, nack: boolean): void {
    if (!this.confirming) throw new FrameError(505, `basic.${nack ? "nack" : "ack"} on channel ${this.id}, which is not in confirm mode`);
    const list = this.unconfirmed;
    const idx = tag - this.unconfirmedBase;
    if (idx < 0 || idx >= list.length) return; // already settled, e.g. a repeated multiple ack
    // Settled entries become holes below unconfirmedHead; the list is compacted only now and
    // then, so a confirm costs what it settles, not a splice of the whole window (100k pipelined
    // confirms, window 1000: onConfirm 39 ms -> ~5 ms of CPU).
    for (let i = multiple ? this.unconfirmedHead : idx; i <= idx; i++) {
      const d = list[i];
      if (d === undefined) continue;
      list[i] = undefined;
      this.unconfirmedCount--;
      if (nack) d.reject(new NackError(`the broker nacked publish #${tag}${multiple ? " (multiple)" : ""}`));
      else d.resolve();
    }
    let head = this.unconfirmedHead;
    while (head < list.length && list[head] === undefined) head++;
    if (head === list.length || (head >= 1024 && head * 2 >= list.length)) {
      list.splice(0, head);
      this.unconfirmedBase += head;
      head = 0;
    }
    this.unconfirmedHead = head;
    if (this.unconfirmedCount === 0 && this.settledWaiters.length > 0) for (const w of this.settledWaiters.splice(0)) w();
  }

  /** Start a consumer that calls `onMessage` per delivery. */
  consume(queue: string, onMessage: (msg: Message) => unknown, options?: ConsumeOptions): Promise<Consumer>;
  /** Start a consumer read with `for await`; `break` cancels it. */
  consume(queue: string, options?: ConsumeOptions): MessageStream;
  consume(queue: string, a?: ((msg: Message) => unknown) | ConsumeOptions, b?: ConsumeOptions): Promise<Consumer> | MessageStream {
    if (typeof a !== "function") return new MessageStream(this, queue, a ?? {});
    const onMessage = a;
    const options = b ?? {};
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError("consume aborted before it was sent"));
    let consumerTag: string | undefined;
    const stop = () => void (consumerTag !== undefined && this.cancel(consumerTag).catch(() => undefined));
    const sink: ConsumerSink = {
      noAck: options.noAck ?? false,
      deliver: (msg) => {
        try {
          const r = onMessage(msg);
          // Any thenable, not only this realm's Promise (a vm context's, a test environment's).
          if (isThenable(r)) r.then(undefined, (e: unknown) => this.consumerFailed(e, msg));
        } catch (e) {
          this.consumerFailed(e, msg);
        }
      },
      end: (err) => {
        signal?.removeEventListener("abort", stop);
        if (err !== undefined) options.onCancel?.(err);
      },
    };
    return this.startConsumer(queue, sink, options).then((tag) => {
      consumerTag = tag;
      if (signal?.aborted) stop();
      else signal?.addEventListener("abort", stop, { once: true });
      return { consumerTag: tag, cancel: () => this.cancel(tag) };
    });
  }

  private warn(w: DeprecatedFeatureWarning): void {
    if (this.listenerCount("warning") > 0) this.emit("warning", w);
    else process.emitWarning(w);
  }

  private consumerFailed(err: unknown, msg: Message): void {
    if (this.listenerCount("consumerError") > 0) this.emit("consumerError", err, msg);
    else process.emitWarning(`warren: a consumer callback failed on channel ${this.id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }

  /** @internal */
  async startConsumer(queue: string, sink: ConsumerSink, options: ConsumeOptions): Promise<string> {
    const m = (await this.call(consumeMethod(queue, options.consumerTag ?? "", options), ["basic.consume-ok"], {
      // Register before any later frame is read: deliveries may follow consume-ok in the same chunk.
      onReply: (reply) => {
        const tag = (reply as MethodOf<"basic.consume-ok">).consumerTag;
        const record = this.record?.consumer(tag, queue, options);
        this.consumers.set(tag, record !== undefined && options.arguments?.["x-stream-offset"] !== undefined ? trackStreamOffset(sink, record) : sink);
      },
    })) as MethodOf<"basic.consume-ok">;
    return m.consumerTag;
  }

  /** basic.cancel: once it resolves, the consumer gets nothing more. */
  async cancel(consumerTag: string, wait?: WaitOptions): Promise<void> {
    const sink = this.consumers.get(consumerTag);
    if (sink === undefined) return;
    await this.call({ name: "basic.cancel", consumerTag, noWait: false }, ["basic.cancel-ok"], {
      ...wait,
      onReply: () => {
        this.consumers.delete(consumerTag);
        this.record?.drop(consumerTag);
        this.rememberCancelled(consumerTag, sink.noAck);
        sink.end(undefined);
      },
    });
  }

  /**
   * A few recently cancelled tags, for a delivery that would still arrive after cancel-ok
   * (RabbitMQ sends none; a delivery in flight before cancel-ok reaches the consumer itself).
   * Bounded: a long-lived channel that consumes and cancels forever keeps no more than these.
   */
  private rememberCancelled(consumerTag: string, noAck: boolean): void {
    this.cancelled.delete(consumerTag);
    this.cancelled.set(consumerTag, noAck);
    if (this.cancelled.size > REMEMBERED_CANCELS) this.cancelled.delete(this.cancelled.keys().next().value!);
  }

  private onServerCancel(consumerTag: string, noWait: boolean): void {
    const sink = this.consumers.get(consumerTag);
    this.consumers.delete(consumerTag);
    this.record?.drop(consumerTag);
    // A quorum queue may still deliver to it (a consumer timeout returns the message and cancels):
    // what comes goes back rather than sit unacked until the channel closes.
    if (sink !== undefined) this.rememberCancelled(consumerTag, sink.noAck);
    if (!noWait) this.send({ name: "basic.cancel-ok", consumerTag });
    sink?.end(new ConsumerCancelledError(consumerTag));
    this.emit("cancel", consumerTag);
  }

  /** basic.get: one message, or null when the queue is empty. */
  async get(queue: string, options: { noAck?: boolean } & WaitOptions = {}): Promise<Message | null> {
    const r = await this.call({ name: "basic.get", queue, noAck: options.noAck ?? false }, ["basic.get-ok", "basic.get-empty"], options);
    return r !== null && "body" in r ? r : null;
  }

  /**
   * Acknowledge a delivery (or, with multiple, every delivery up to it). Returns undefined, or
   * the channel's close error if it is closed: an ack can't be sent then, and the broker
   * requeues the message by itself.
   */
  ack(msg: Message | number, options: { multiple?: boolean } = {}): AmqpError | undefined {
    if (!this.settles()) return this.closedError();
    const tag = tagOf(msg);
    if (options.multiple !== true && tag === this.settledThrough + 1 && Number.isSafeInteger(tag)) {
      this.settledThrough = tag;
      if (this.pendingAck === 0) {
        this.ackHeldFrom = tag;
        this.connection.holdAck(this);
      } else if (tag - this.ackHeldFrom + 1 === this.ackBatch) this.connection.scheduleFlush();
      this.pendingAck = tag;
      return undefined;
    }
    return this.settle({ name: "basic.ack", deliveryTag: tag, multiple: options.multiple ?? false });
  }

  /** Reject one or (multiple) many deliveries; requeue defaults to true. */
  nack(msg: Message | number, options: { multiple?: boolean; requeue?: boolean } = {}): AmqpError | undefined {
    return this.settle({ name: "basic.nack", deliveryTag: tagOf(msg), multiple: options.multiple ?? false, requeue: options.requeue ?? true });
  }

  /** Reject one delivery; requeue defaults to true. */
  reject(msg: Message | number, options: { requeue?: boolean } = {}): AmqpError | undefined {
    return this.settle({ name: "basic.reject", deliveryTag: tagOf(msg), requeue: options.requeue ?? true });
  }

  private settle(m: MethodOf<"basic.ack"> | MethodOf<"basic.nack"> | MethodOf<"basic.reject">): AmqpError | undefined {
    if (!this.settles()) return this.closedError();
    if (Number.isNaN(m.deliveryTag)) return new AmqpError(`${m.name}: expected a Message or a delivery tag`);
    try {
      if (this.tagOffset === 0) this.send(m);
      else if (m.deliveryTag <= this.tagOffset) return new AmqpError(`${m.name} of delivery ${m.deliveryTag}, from before the connection was recovered, not sent: the broker has requeued that message`);
      else this.send({ ...m, deliveryTag: m.deliveryTag - this.tagOffset });
    } catch (e) {
      return new AmqpError(`invalid ${m.name}: ${(e as Error).message}`, { cause: e });
    }
    const multiple = m.name !== "basic.reject" && m.multiple;
    if (m.deliveryTag === this.settledThrough + 1 || (multiple && m.deliveryTag > this.settledThrough)) this.settledThrough = m.deliveryTag;
    return undefined;
  }

  /**
   * Whether an ack, nack or reject can be sent now: on an open channel, or one that recovery has
   * opened again and is restoring (its fresh deliveries must be settled, or a full prefetch
   * window stalls the consumer); never once the connection is closing.
   */
  private settles(): boolean {
    return (this.state === "open" || this.state === "restoring") && this.connection.state !== "closing";
  }

  /** @internal Write the held coalesced ack, if any. */
  flushAck(): void {
    const tag = this.pendingAck;
    if (tag === 0) return;
    this.pendingAck = 0;
    this.connection.encodeMethod(this.id, { name: "basic.ack", deliveryTag: tag - this.tagOffset, multiple: true });
  }

  /** Every frame this channel sends goes out after the acks it holds. */
  private send(m: Method): void {
    if (this.pendingAck !== 0) this.flushAck();
    this.connection.sendMethod(this.id, m);
  }

  /** basic.recover: redeliver every unacked message (requeue true: possibly to other consumers). */
  async recover(options: { requeue?: boolean } & WaitOptions = {}): Promise<void> {
    await this.call({ name: "basic.recover", requeue: options.requeue ?? true }, ["basic.recover-ok"], {
      ...options,
      // Everything outstanding is redelivered under new tags: the old ones are settled.
      onReply: () => (this.settledThrough = this.lastDeliveryTag),
    });
  }

  // -------------------------------------------------------------------------------------------
  // tx

  async txSelect(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.select" }, ["tx.select-ok"], wait);
  }
  async txCommit(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.commit" }, ["tx.commit-ok"], wait);
  }
  async txRollback(wait?: WaitOptions): Promise<void> {
    await this.call({ name: "tx.rollback" }, ["tx.rollback-ok"], wait);
  }

  // -------------------------------------------------------------------------------------------
  // flow (channel.flow from the broker: stop publishing until active again)

  private onFlow(active: boolean): void {
    this.flowActive = active;
    this.send({ name: "channel.flow-ok", active });
    if (active) this.releaseHeld();
  }

  // -------------------------------------------------------------------------------------------
  // closing

  /**
   * Close the channel. Waits for outstanding publisher confirms first (bounded by the sync
   * timeout), so a close right after a burst of publishes loses nothing silently. Once it
   * resolves, no further delivery reaches this channel's consumers.
   */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    // The connection's close closes this channel too; a channel.close now would follow connection.close.
    if (this.connection.state === "closing") return new Promise<void>((resolve) => this.once("close", () => resolve()));
    if (this.state === "recovering" || this.state === "restoring") {
      // Being re-opened right now: let that finish, then close it on the broker as usual.
      if (this.restoring) {
        await this.restoring.catch(() => undefined);
        return this.close();
      }
      // Nothing to tell a broker that has never seen this channel on the new connection.
      this.connection.releaseChannel(this.id);
      this.fail(new ChannelClosedError({ replyCode: ReplyCode.REPLY_SUCCESS, replyText: "closed by the client", initiatedBy: "client" }));
      return;
    }
    if (this.state === "closing") return new Promise<void>((resolve) => this.once("close", () => resolve()));
    if (this.unconfirmedCount > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.waitForConfirms().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, this.connection.options.timeout)))]);
      clearTimeout(timer);
      if (this.state !== "open") return;
    }
    const done = new Promise<void>((resolve) => this.once("close", () => resolve()));
    this.closeReason = new ChannelClosedError({ replyCode: ReplyCode.REPLY_SUCCESS, replyText: "closed by the client", initiatedBy: "client" });
    this.beginClose(ReplyCode.REPLY_SUCCESS, "closed by the client");
    return done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private beginClose(code: number, text: string): void {
    this.state = "closing";
    // A delivery half-assembled now is dropped with the rest of its frames (see onFrame).
    this.dropContent();
    this.send({ name: "channel.close", replyCode: code, replyText: text.slice(0, 255), classId: 0, methodId: 0 });
    clearTimeout(this.callTimer);
    // If close-ok is slow, the caller is not kept waiting: the channel is closed for the user, but
    // its id stays taken until close-ok does come (see onFrame), so what the broker still sends
    // on it is dropped instead of taken for a frame on a channel that is not open (504, which
    // would close the whole connection).
    this.callTimer = setTimeout(() => this.fail(this.closeReason!), this.connection.options.timeout);
    this.callTimer.unref();
    this.rejectPending(this.closeReason!);
  }

  /**
   * A content header declares a body over maxMessageSize: buffering it is what a hostile peer
   * would want. Close this channel with 311 content-too-large instead (the connection carries
   * on); while closing, the body frames are dropped unread, and the broker requeues the delivery.
   */
  private refuseContent(size: number): void {
    const text = `a message body of ${size} bytes is over maxMessageSize (${this.connection.options.maxMessageSize})`;
    this.closeReason = new ChannelClosedError({ replyCode: ReplyCode.CONTENT_TOO_LARGE, replyText: text, initiatedBy: "library" });
    this.beginClose(ReplyCode.CONTENT_TOO_LARGE, text);
  }

  /** Close the channel because warren can no longer trust its state (a timed-out call). */
  private abandon(reason: AmqpError): void {
    this.closeReason = reason;
    this.beginClose(ReplyCode.REPLY_SUCCESS, reason.message);
  }

  private finishClose(): void {
    clearTimeout(this.callTimer);
    this.connection.releaseChannel(this.id);
    this.fail(this.closeReason!);
  }

  private onServerClose(m: MethodOf<"channel.close">): void {
    const err = closeError("channel", { replyCode: m.replyCode, replyText: m.replyText, classId: m.classId, methodId: m.methodId, initiatedBy: "server" });
    this.pendingAck = 0; // the broker has closed the channel: held acks are moot, it requeues
    this.connection.sendMethod(this.id, { name: "channel.close-ok" });
    this.connection.releaseChannel(this.id);
    this.fail(err);
  }

  /** A message half assembled when the channel went is dropped (its delivery is requeued by the broker). */
  private dropContent(): void {
    this.contentMethod = undefined;
    this.contentProps = undefined;
    this.contentChunks = [];
    this.contentReceived = 0;
    this.contentSize = 0;
  }

  /** The call in flight and every call queued behind it reject with `reason`. */
  private rejectCalls(reason: AmqpError): void {
    const calls = this.inFlight ? [this.inFlight, ...this.queue] : [...this.queue];
    this.inFlight = undefined;
    this.queue.length = 0;
    for (const call of calls) call.reject(reason);
  }

  /** Empties the confirm window and hands back what was in it (holes included). */
  private takeUnconfirmed(): (Deferred | undefined)[] {
    const unconfirmed = this.unconfirmed;
    this.unconfirmed = [];
    this.unconfirmedHead = 0;
    this.unconfirmedCount = 0;
    return unconfirmed;
  }

  private rejectPending(reason: AmqpError): void {
    this.rejectCalls(reason);
    for (const d of this.takeUnconfirmed()) d?.reject(reason);
    for (const w of this.settledWaiters.splice(0)) w(reason);
    // A held publish was never sent.
    for (const w of this.heldPublishes.splice(0)) w(reason);
    for (const sink of this.consumers.values()) sink.end(isClientClose(reason) ? undefined : reason);
    this.consumers.clear();
    this.record?.clear();
    for (const d of this.retained.splice(0)) d.reject(reason);
    this.resumeGate?.fail(reason);
  }

  /**
   * @internal The one way to closed: idempotent; rejects everything pending with `reason` and
   * emits "close" (with undefined when this client closed the channel).
   */
  fail(reason: AmqpError): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closeReason = reason;
    this.pendingAck = 0;
    clearTimeout(this.callTimer);
    this.dropContent();
    this.rejectPending(reason);
    this.cancelled.clear();
    this.emit("close", isClientClose(reason) ? undefined : reason);
  }

  // -------------------------------------------------------------------------------------------
  // recovery (driven by recovery.ts)

  /** @internal The connection was lost and this channel waits to be restored. */
  get recovering(): boolean {
    return this.state === "recovering";
  }

  /**
   * @internal The connection was lost and will be recovered. The calls in flight or queued and
   * the unconfirmed publishes reject with `reason`: the broker may or may not have acted on them
   * (unconfirmed publishes are kept instead with republishUnconfirmed). Consumers stay
   * registered, to be started again. Returns false when the channel just closes instead (it was
   * still opening, or closing).
   */
  suspend(reason: AmqpError): boolean {
    if (this.state === "closed") return false;
    if (this.state === "opening" || this.state === "closing") {
      this.fail(this.state === "closing" ? (this.closeReason ?? reason) : reason);
      return false;
    }
    this.state = "recovering";
    this.lostReason = reason;
    clearTimeout(this.callTimer);
    this.pendingAck = 0; // the broker requeues every unacked delivery of the dead channel
    this.dropContent();
    this.rejectCalls(reason);
    const unconfirmed = this.takeUnconfirmed();
    // Confirm sequence numbers start again at 1 on the new channel (RabbitMQ "Publisher Confirms").
    this.unconfirmedBase = 1;
    for (const d of unconfirmed) {
      if (d === undefined) continue;
      if (d.args) this.retained.push(d);
      else d.reject(reason);
    }
    // Waiters exist only while publishes were unconfirmed; none retained means all of them were rejected.
    if (this.retained.length === 0) for (const w of this.settledWaiters.splice(0)) w(reason);
    // Held publishes were never sent: they go out after the restore, in order.
    this.flowActive = true;
    this.cancelled.clear();
    // Iterators let go of the socket and of deliveries the broker has requeued.
    for (const sink of this.consumers.values()) sink.suspend?.();
    this.resumeGate ??= new ResumeGate();
    return true;
  }

  /**
   * @internal Recovery: open this channel again (same id) on the new connection, then put back
   * prefetch, consumers (same tags, queues renamed if they were) and confirm mode; then send the
   * retained publishes and let the calls that waited go, in their order.
   */
  restore(): Promise<void> {
    this.restoring = this.reopen().finally(() => (this.restoring = undefined));
    return this.restoring;
  }

  private async reopen(): Promise<void> {
    const internal = (method: Method, replies: readonly MethodName[]) => this.call(method, replies, { opening: true });
    const qos = (q: { count: number; size: number }, global: boolean) => internal({ name: "basic.qos", prefetchSize: q.size, prefetchCount: q.count, global }, ["basic.qos-ok"]);
    await internal({ name: "channel.open" }, ["channel.open-ok"]);
    this.tagOffset = this.lastDeliveryTag;
    this.settledThrough = this.lastDeliveryTag;
    this.state = "restoring";
    const r = this.record!;
    if (r.shared) await qos(r.shared, true);
    // Per-consumer prefetch applies to consumers started after it: replay it consumer by consumer.
    let current = { count: 0, size: 0 };
    for (const [tag, c] of [...r.consumers]) {
      if (c.prefetch.count !== current.count || c.prefetch.size !== current.size) await qos((current = c.prefetch), false);
      c.queue = this.connection.recovery!.queueName(c.queue);
      await internal(consumeMethod(c.queue, tag, { ...c.options, arguments: resumeArguments(c) }), ["basic.consume-ok"]);
    }
    if (r.perConsumer.count !== current.count || r.perConsumer.size !== current.size) await qos(r.perConsumer, false);
    if (this.confirming) await internal({ name: "confirm.select", noWait: false }, ["confirm.select-ok"]);
    this.state = "open";
    this.lostReason = undefined;
    for (const d of this.retained.splice(0)) this.publish(...d.args!).then(d.resolve, d.reject);
    this.releaseHeld();
    this.resumeGate?.open();
  }

  /** While recovering: wait until restore() is done (bounded by recovery.waitTimeout and `signal`). */
  private afterRecovery(what: string, signal?: AbortSignal): Promise<void> {
    this.resumeGate ??= new ResumeGate();
    return this.resumeGate.wait(this.connection.recovery!.waitTimeout, what, signal);
  }

  private closedError(): AmqpError {
    if (this.state === "recovering" && this.lostReason) return this.lostReason;
    return this.closeReason ?? this.connection.reason ?? new ChannelClosedError({ replyCode: 0, replyText: "channel is not open", initiatedBy: "library" });
  }

  /** @internal for consumer iterators */
  holdReading(): void {
    this.connection.holdReading();
  }
  /** @internal */
  releaseReading(): void {
    this.connection.releaseReading();
  }
}

/**
 * Stop waiting for `p` after `timeout` ms (TimeoutError) or when `signal` aborts (AbortError).
 * `p` itself goes on and settles unobserved (never as an unhandled rejection).
 */
function bounded<T>(p: Promise<T>, { timeout, signal }: { timeout?: number | undefined; signal?: AbortSignal | undefined }, what: string): Promise<T> {
  if (signal?.aborted) {
    p.catch(() => undefined);
    return Promise.reject(new AbortError(`${what} aborted`));
  }
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = (err: AmqpError) => {
      cleanup();
      p.catch(() => undefined);
      reject(err);
    };
    const onAbort = () => stop(new AbortError(`${what} aborted`));
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    if (timeout !== undefined) timer = setTimeout(() => stop(new TimeoutError(`${what} took longer than ${timeout} ms`)), timeout);
    signal?.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e: unknown) => {
        cleanup();
        reject(e);
      },
    );
  });
}

/** A declare's `arguments` with its typed queue options written in under their x- names. */
function queueArguments(o: QueueDeclareOptions): FieldTable {
  if (o.queueType === undefined && o.deliveryLimit === undefined && o.deadLetterStrategy === undefined) return o.arguments ?? {};
  const args: FieldTable = { ...o.arguments };
  if (o.queueType !== undefined) args["x-queue-type"] = o.queueType;
  if (o.deliveryLimit !== undefined) args["x-delivery-limit"] = o.deliveryLimit;
  if (o.deadLetterStrategy !== undefined) args["x-dead-letter-strategy"] = o.deadLetterStrategy;
  return args;
}

/** Whether the broker's connection.start says it is RabbitMQ `major.minor` or later. */
function brokerAtLeast(serverProperties: FieldTable, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(String(serverProperties["version"] ?? ""));
  if (m === null) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

/**
 * A stream consumer of a recovering connection: each delivery's `x-stream-offset` header is kept
 * in its record, so that recovery restarts it after the last message it was given.
 */
function trackStreamOffset(sink: ConsumerSink, record: ConsumerRecord): ConsumerSink {
  const deliver = sink.deliver.bind(sink);
  return {
    noAck: sink.noAck,
    deliver: (msg) => {
      const offset = msg.properties.headers?.["x-stream-offset"];
      if (typeof offset === "number" || typeof offset === "bigint") record.streamOffset = offset;
      deliver(msg);
    },
    end: (err) => sink.end(err),
    suspend: () => sink.suspend?.(),
  };
}

/** basic.consume for `queue` with these options, as the user starts it and as recovery restarts it. */
function consumeMethod(queue: string, consumerTag: string, o: ConsumeOptions): MethodOf<"basic.consume"> {
  return { name: "basic.consume", queue, consumerTag, noLocal: o.noLocal ?? false, noAck: o.noAck ?? false, exclusive: o.exclusive ?? false, noWait: false, arguments: (o.arguments as FieldTable | undefined) ?? {} };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";
}

/** The delivery tag of a message, or NaN for something that is neither (settle() reports it, never throws). */
function tagOf(msg: Message | number): number {
  if (typeof msg === "number") return msg;
  const tag = (msg as Partial<Message> | null | undefined)?.fields?.deliveryTag;
  return typeof tag === "number" ? tag : NaN;
}

/** A per-call timeout setTimeout cannot honour: refused through the call's promise. */
function badTimeout(what: string, timeout: unknown): RangeError {
  return new RangeError(`${what}: timeout must be a number of ms from 1 to ${MAX_TIMER_MS} (setTimeout's limit), got ${String(timeout)}`);
}
