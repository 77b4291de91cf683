/**
 * A channel's state machine: one handler per method the broker sends on a channel, closing,
 * the one failure path, what recovery does to a channel; channel.ts adds the API. Its parts:
 * sync-calls.ts, content.ts, confirms.ts, delivery-tags.ts, consumers.ts. The connection is
 * reached only through ChannelHost (channel-host.ts).
 *
 *   opening -> open -> closing -> closed
 *                 \-> recovering -> restoring -> open      (automatic recovery, recovery.ts)
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
import type { Method, MethodName, MethodOf } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";
import type { ChannelHost } from "./channel-host.js";
import type { ChannelEvents, WaitOptions } from "./channel-options.js";
import { ConfirmWindow, type Unconfirmed } from "./confirms.js";
import { ContentAssembly, TOO_LARGE, type ContentMethod } from "./content.js";
import { ConsumerTable, consumeMethod } from "./consumers.js";
import { DeliveryTags } from "./delivery-tags.js";
import { callTrace, traced, type Server } from "./diagnostics.js";
import { AbortError, CLIENT_CLOSE, ChannelClosedError, ConsumerCancelledError, clientClose, closeError, isClientClose, type AmqpError } from "./errors.js";
import type { DeliveryFields, Message } from "./message.js";
import { Counters, type ChannelStats } from "./stats.js";
import { SyncCalls, type Reply, type SyncCallOptions } from "./sync-calls.js";
import { ChannelRecord, resumeArguments, type Topology } from "./topology.js";
import { Waiters, badTimeout, isTimeout } from "./wait.js";

/**
 * "recovering": the connection was lost and automatic recovery will open this channel again.
 * "restoring": it is open again on the broker, and recovery is putting back its prefetch,
 * consumers and confirm mode; deliveries of the new channel can be settled, the user's other
 * calls wait until it is "open".
 */
type State = "opening" | "open" | "closing" | "closed" | "recovering" | "restoring";

/**
 * `opening`: open()'s and recovery's own calls, which go out while the channel is not (yet) open;
 * `closing`: the connection's close's own calls, which go out once the user's are refused.
 */
type CallOptions = SyncCallOptions & { opening?: boolean; closing?: boolean };

/** The state machine under Channel: see channel.ts for the API. */
export abstract class ChannelCore extends EventEmitter<ChannelEvents> {
  readonly id: number;
  /** @internal */ protected readonly host: ChannelHost;
  /** @internal */ protected state: State = "opening";
  /** @internal */ protected closeReason: AmqpError | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  /** @internal */ protected readonly calls: SyncCalls;
  private readonly content: ContentAssembly;
  /** @internal */ protected readonly consumers = new ConsumerTable();
  /** @internal */ protected readonly tags: DeliveryTags;
  /** @internal */ protected readonly confirms = new ConfirmWindow();
  /** @internal confirm.select is written: publishes from now on are numbered and confirmed. */
  protected confirming = false;
  /** @internal channel.flow from the broker (spec channel.flow): false stops publishing until active again. */
  protected flowActive = true;
  /** @internal A confirm.select waits behind another sync call: publishes are held until it is written. */
  protected selectQueued = false;
  /** @internal Publishes held by channel.flow or a queued confirm.select; released in their order. */
  protected readonly held = new Waiters();
  /** @internal What this channel counts itself (stats.ts); the confirm window and the tags count the rest. */
  protected readonly counts = new Counters();

  // Automatic recovery (recovery.ts); unused without it.
  /** @internal What this channel set up (prefetch, consumers), to set it up again; not on recovery's own channel. */
  protected readonly record: ChannelRecord | undefined;
  /** @internal */ protected readonly topology: Topology | undefined;
  private lostReason: AmqpError | undefined;
  /** Calls and publishes made while recovering wait here for the channel to be back. */
  private readonly resumed = new Waiters();
  /** Unconfirmed publishes to send again on the new channel (republishUnconfirmed). */
  private retained: Unconfirmed[] = [];
  private restoring: Promise<void> | undefined;

  /** @internal */ constructor(host: ChannelHost, id: number, recorded: boolean) {
    super();
    this.host = host;
    this.id = id;
    // Typed as Connection by connection.ts, which declares the property (see there).
    (this as { connection?: unknown }).connection = host.connection;
    this.calls = new SyncCalls(id, (m) => this.tags.send(m), (err) => this.abandon(err));
    this.content = new ContentAssembly(id, () => host.options.maxMessageSize, (m, properties, body) => this.onContent(m, properties, body));
    this.tags = new DeliveryTags(id, host.out);
    // Recovery's own channel (recorded false) re-declares the topology: that is not recorded again.
    this.topology = recorded ? host.recovery?.topology : undefined;
    this.record = host.recovery ? new ChannelRecord(host.recovery.topology) : undefined;
  }

  /** @internal A delivered message, which settles itself through its channel (channel.ts). */
  protected abstract delivery(body: Buffer, properties: BasicProperties, fields: DeliveryFields): Message;

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
      await this.call({ name: "channel.open" }, ["channel.open-ok"], { ...wait, opening: true });
    } catch (e) {
      // Aborted after channel.open went out: close the channel the broker opens (its id is freed on close-ok).
      if (e instanceof AbortError && this.state === "opening") this.abandon(e);
      throw e;
    }
    if (this.state === "opening") this.state = "open";
  }

  /** @internal */ protected call(method: Method, replies: readonly MethodName[], options: CallOptions = {}): Promise<Reply> {
    const { signal, opening = false, closing = false } = options;
    if ((this.state === "recovering" || this.state === "restoring") && !opening) return this.afterRecovery(method.name, signal, () => this.call(method, replies, options));
    if (this.state === "closed" || this.state === "closing" || (this.state === "opening" && !opening) || (this.host.closing && !closing)) return Promise.reject(this.closedError());
    if (signal?.aborted) return Promise.reject(new AbortError(`${method.name} aborted before it was sent`));
    const timeout = options.timeout ?? this.host.options.timeout;
    if (!isTimeout(timeout)) return Promise.reject(badTimeout(method.name, timeout));
    if (!callTrace.hasSubscribers) return this.calls.call(method, replies, timeout, options);
    return traced(callTrace, { server: this.server, channel: this.id, method: method.name }, () => this.calls.call(method, replies, timeout, options));
  }

  /** @internal Where the broker is, for tracing (diagnostics.ts). */
  get server(): Server {
    return { address: this.host.options.hostname, port: this.host.options.port };
  }

  // -------------------------------------------------------------------------------------------
  // inbound frames

  /** @internal */ onFrame(frame: Frame): void {
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
    else if (frame.method.name === "channel.close-ok") this.host.release(this.id);
  }

  private onMethod(m: Method): void {
    if (this.state === "closing") {
      // Discard everything until close-ok; answer a close that crossed ours (RabbitMQ, closing,
      // answers ours too, so close-ok still comes).
      if (m.name === "channel.close-ok") this.finishClose();
      else if (m.name === "channel.close") this.host.out.method(this.id, { name: "channel.close-ok" });
      return;
    }
    if (this.content.expecting) throw new FrameError(505, `${m.name} on channel ${this.id} while a message's content was expected`);
    switch (m.name) {
      case "basic.deliver":
      case "basic.return":
        return this.content.begin(m);
      case "basic.get-ok":
        this.calls.expect(m);
        return this.content.begin(m);
      case "basic.ack":
      case "basic.nack":
        if (!this.confirming) throw new FrameError(505, `${m.name} on channel ${this.id}, which is not in confirm mode`);
        return this.confirms.confirm(m.deliveryTag, m.multiple, m.name === "basic.nack");
      case "basic.cancel":
        return this.onServerCancel(m);
      case "channel.close":
        return this.onServerClose(m);
      case "channel.flow":
        return this.onFlow(m);
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
        const msg = this.delivery(body, properties, m as DeliveryFields);
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
        return this.calls.reply(this.delivery(body, properties, m as DeliveryFields));
      }
      case "basic.return":
        this.counts.returned++;
        if (this.confirming) this.confirms.returned(m, body);
        this.emit("return", { body, properties, fields: m });
        return;
    }
  }

  private onServerCancel(m: MethodOf<"basic.cancel">): void {
    // Remembered: a quorum queue may still deliver to it (a consumer timeout returns the message
    // and cancels); what comes goes back rather than sit unacked until the channel closes.
    const sink = this.consumers.remove(m.consumerTag);
    this.record?.drop(m.consumerTag);
    if (!m.noWait) this.tags.send({ name: "basic.cancel-ok", consumerTag: m.consumerTag });
    sink?.end(new ConsumerCancelledError(m.consumerTag));
    this.emit("cancel", m.consumerTag);
  }

  private onServerClose(m: MethodOf<"channel.close">): void {
    const err = closeError("channel", { replyCode: m.replyCode, replyText: m.replyText, classId: m.classId, methodId: m.methodId, initiatedBy: "server" });
    this.tags.dropHeld(); // the broker has closed the channel: held acks are moot, it requeues
    this.host.out.method(this.id, { name: "channel.close-ok" });
    this.host.release(this.id);
    this.fail(err);
  }

  private onFlow(m: MethodOf<"channel.flow">): void {
    this.flowActive = m.active;
    this.tags.send({ name: "channel.flow-ok", active: m.active });
    if (m.active) this.releaseHeld();
  }

  /**
   * @internal Hand back deliveries no consumer will process: basic.nack with requeue, a return,
   * not a failure (RabbitMQ 4.3 counts a basic.reject toward the queue's x-delivery-limit, and
   * not a nack; before 4.3 both count alike), so stopping a consumer never spends a message's
   * delivery limit (delivery-tags.ts giveBack: as few frames as can be). Not a stream's message
   * (it carries `x-stream-offset`): a stream is not consumed by delivery, and RabbitMQ closes the
   * connection (540) on a nack from a stream.
   */
  giveBack(msgs: readonly Message[]): void {
    // Also while the connection closes (its close cancels the consumers first), until connection.close is out.
    if (!((this.state === "open" || this.state === "restoring") && !this.host.closeSent)) return;
    const tags = msgs.filter((m) => m.properties.headers?.["x-stream-offset"] === undefined).map((m) => m.fields.deliveryTag);
    if (tags.length > 0) this.tags.giveBack(tags);
  }

  /**
   * @internal Whether an ack, nack or reject can be sent now: on an open channel, or one that
   * recovery has opened again and is restoring (its fresh deliveries must be settled, or a full prefetch
   * window stalls the consumer); never once the connection is closing.
   */
  protected settles(): boolean {
    return (this.state === "open" || this.state === "restoring") && !this.host.closing;
  }

  /**
   * Cumulative counts of this channel's publishes and deliveries, and what waits or runs now
   * (stats.ts). Cheap: the counters are kept anyway; this only reads them.
   */
  stats(): ChannelStats {
    const c = this.counts;
    const t = this.tags;
    const { buffered, running } = this.consumers.load();
    return {
      publishes: { sent: c.sent, confirmed: this.confirms.confirmed, nacked: this.confirms.nacked, returned: c.returned, timedOut: c.timedOut, unconfirmed: this.confirms.count },
      deliveries: { received: c.received, redelivered: c.redelivered, acked: t.acked, nacked: t.nacked, rejected: t.rejected, buffered, handlersRunning: running },
    };
  }

  /** @internal Let the held publishes go, in order, once neither channel.flow nor a queued confirm.select holds them. */
  protected releaseHeld(): void {
    if (this.flowActive && !this.selectQueued) this.held.wake();
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
    if (this.host.closing || this.state === "closing") return this.closedEvent();
    if (this.state === "recovering" || this.state === "restoring") {
      // Being re-opened right now: let that finish, then close it on the broker as usual.
      if (this.restoring) {
        await this.restoring.catch(() => undefined);
        return this.close();
      }
      // Nothing to tell a broker that has never seen this channel on the new connection.
      this.host.release(this.id);
      this.fail(clientClose("channel"));
      return;
    }
    if (this.confirms.count > 0) {
      await this.confirms.waitAll({ timeout: this.host.options.timeout }).catch(() => undefined);
      if (this.state !== "open") return;
    }
    const done = this.closedEvent();
    this.beginClose(clientClose("channel"), ReplyCode.REPLY_SUCCESS, CLIENT_CLOSE);
    return done;
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
    this.beginClose(new ChannelClosedError({ replyCode: ReplyCode.CONTENT_TOO_LARGE, replyText: text, initiatedBy: "library" }), ReplyCode.CONTENT_TOO_LARGE, text);
  }

  /** @internal Close the channel because warren can no longer trust its state (a timed-out call). */
  protected abandon(reason: AmqpError): void {
    this.beginClose(reason, ReplyCode.REPLY_SUCCESS, reason.message);
  }

  private finishClose(): void {
    this.host.release(this.id);
    this.fail(this.closeReason!);
  }

  private rejectPending(reason: AmqpError): void {
    this.calls.fail(reason);
    this.confirms.fail(reason);
    this.held.fail(reason); // a held publish was never sent
    this.consumers.endAll(isClientClose(reason) ? undefined : reason);
    this.record?.clear();
    for (const u of this.retained.splice(0)) u.reject(reason);
    this.resumed.fail(reason);
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
    this.tags.dropHeld();
    this.content.reset();
    this.rejectPending(reason);
    this.consumers.forgetCancelled();
    this.emit("close", isClientClose(reason) ? undefined : reason);
  }

  /** @internal */ protected closedError(): AmqpError {
    if (this.state === "recovering" && this.lostReason) return this.lostReason;
    return this.closeReason ?? this.host.reason ?? new ChannelClosedError({ replyCode: 0, replyText: "channel is not open", initiatedBy: "library" });
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
    this.tags.dropHeld(); // the broker requeues every unacked delivery of the dead channel
    this.content.reset();
    this.calls.fail(reason);
    for (const u of this.confirms.take()) {
      if (u.republish) this.retained.push(u);
      else u.reject(reason);
    }
    // Confirm sequence numbers start again at 1 on the new channel (RabbitMQ "Publisher Confirms").
    this.confirms.restart();
    // Waiters exist only while publishes were unconfirmed; none retained means all of them were rejected.
    if (this.retained.length === 0) this.confirms.failWaiters(reason);
    // Held publishes were never sent: they go out after the restore, in order.
    this.flowActive = true;
    // Iterators let go of the socket and of deliveries the broker has requeued.
    this.consumers.suspendAll();
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
    this.tags.restart();
    this.state = "restoring";
    const r = this.record!;
    if (r.shared) await qos(r.shared, true);
    // Per-consumer prefetch applies to consumers started after it: replay it consumer by consumer.
    let current = { count: 0, size: 0 };
    for (const [tag, c] of [...r.consumers]) {
      if (c.prefetch.count !== current.count || c.prefetch.size !== current.size) await qos((current = c.prefetch), false);
      c.queue = this.host.recovery!.topology.queueName(c.queue);
      await internal(consumeMethod(c.queue, tag, { ...c.options, arguments: resumeArguments(c.options.arguments, c.stream) }), ["basic.consume-ok"]);
    }
    if (r.perConsumer.count !== current.count || r.perConsumer.size !== current.size) await qos(r.perConsumer, false);
    if (this.confirming) await internal({ name: "confirm.select", noWait: false }, ["confirm.select-ok"]);
    this.state = "open";
    this.lostReason = undefined;
    for (const u of this.retained.splice(0)) u.republish!().then(() => u.resolve(), (e: unknown) => u.reject(e));
    this.releaseHeld();
    this.resumed.wake();
  }

  /** @internal While recovering: run `then` once restore() is done (bounded by recovery.waitTimeout and `signal`), in the order of the calls. */
  protected afterRecovery<T>(what: string, signal: AbortSignal | undefined, then: () => Promise<T>): Promise<T> {
    return this.resumed.wait(`${what} (waiting for the connection to recover)`, { timeout: this.host.recovery!.waitTimeout, signal }, then);
  }
}
