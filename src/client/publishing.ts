/**
 * A channel's publishing: basic.publish one by one or in batches (publish-batch.ts), confirm
 * mode (confirm.select, the confirm window of confirms.ts), and what holds a publish back: the
 * broker's channel.flow, a confirm.select queued behind another call, a full confirm window, a
 * recovery. The channel (channel.ts) owns one and hands it the frames that concern it (basic.ack,
 * basic.nack, basic.return, channel.flow) and the channel's fate (suspend, restart, fail).
 */
import type { MethodOf } from "../protocol/methods.js";
import type { ChannelWriter } from "./channel-host.js";
import type { ConfirmSelectOptions, PublishOptions, WaitOptions } from "./channel-options.js";
import { ConfirmWindow, Notify, notify, settle, type Published, type Unconfirmed } from "./confirms.js";
import { publishTrace, traced, type PublishContext, type Server } from "./diagnostics.js";
import { AbortError, TimeoutError, type AmqpError } from "./errors.js";
import type { ReturnedMessage } from "./message.js";
import { BatchEntry, BatchOutcome, type Publication } from "./publish-batch.js";
import type { Counters } from "./stats.js";
import type { SyncCallOptions } from "./sync-calls.js";
import { RESOLVED, Waiters, badTimeout, bounded, isTimeout } from "./wait.js";

const NO_OPTIONS: PublishOptions = {};
const resolveAnyway = (): void => undefined;
/** Publish timeouts already counted (a publish that waited for a recovery, then for room, fails once). */
const timeoutsCounted = new WeakSet<TimeoutError>();

/** What publishing needs of its channel (Channel implements it). */
export interface PublishingHost {
  readonly id: number;
  readonly out: ChannelWriter;
  /** Where the broker is, for tracing. */
  readonly server: Server;
  /** Whether a publish goes out now, waits for the channel to be recovered, or is refused with closedError(). */
  readonly gate: "open" | "recovering" | "closed";
  closedError(): AmqpError;
  /** Run `then` once the channel is recovered, in the order of the calls (bounded: recovery.waitTimeout, `signal`). */
  afterRecovery<T>(what: string, signal: AbortSignal | undefined, then: () => Promise<T>): Promise<T>;
  /** With recovery.republishUnconfirmed: an unconfirmed publish is sent again after a recovery (fixed for the connection's life). */
  readonly republishes: boolean;
  /** Acks the delivery tags defer for coalescing go out before a publish (delivery-tags.ts). */
  writeDeferredAcks(): void;
  /** A synchronous call is in flight or queued. */
  readonly callBusy: boolean;
  /** confirm.select, through the channel's sync calls. */
  confirmSelect(options: SyncCallOptions): Promise<unknown>;
  readonly counts: Counters;
}

export class Publishing {
  readonly confirms = new ConfirmWindow();
  /** confirm.select is written: publishes from now on are numbered and confirmed. */
  private confirming = false;
  /** channel.flow from the broker (spec channel.flow): false stops publishing until active again. */
  private flowActive = true;
  /** A confirm.select waits behind another sync call: publishes wait until it is written. */
  private selectQueued = false;
  /** Publishes stopped by channel.flow or a queued confirm.select; they go on in their order. */
  private readonly stopped = new Waiters();

  constructor(private readonly ch: PublishingHost) {}

  /** In confirm mode: a basic.ack or basic.nack from the broker is expected. */
  get inConfirmMode(): boolean {
    return this.confirming;
  }

  /**
   * basic.publish. Resolves once the frames are handed to a socket that is below its
   * high-water mark (so awaiting it is backpressure); in confirm mode once the broker acks.
   * Rejects on nack (NackError), on a channel or connection that closes first, and on a bad
   * argument (TypeError/RangeError naming it; nothing is sent).
   */
  publish(exchange: string, routingKey: string, body: string | Uint8Array, options: PublishOptions): Promise<void> {
    const onConfirm = options.onConfirm;
    if (onConfirm === undefined) return this.traceSend(exchange, routingKey, body, options);
    if (typeof onConfirm !== "function")
      return Promise.reject(new TypeError(`publish: onConfirm must be a function, got ${typeof onConfirm}`));
    // Every outcome is the callback's, a refusal before the write included: the promise only
    // resolves (backpressure), so a caller may leave it. Most publishes get the shared settled
    // promise of a socket with room, and nothing is made for them.
    const sent = this.traceSend(exchange, routingKey, body, options);
    return sent === RESOLVED ? sent : sent.then(undefined, (e: unknown) => notify(onConfirm, e));
  }

  /** publish(), traced when a subscriber listens. */
  private traceSend(
    exchange: string,
    routingKey: string,
    body: string | Uint8Array,
    options: PublishOptions,
  ): Promise<void> {
    if (!publishTrace.hasSubscribers) return this.send(exchange, routingKey, body, options, false);
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const ctx = this.traceContext(exchange, routingKey, bytes, options);
    return traced(publishTrace, ctx, () =>
      this.send(exchange, routingKey, bytes, ctx.properties as PublishOptions, false),
    );
  }

  /** Traced (diagnostics.ts): the subscriber sees, and may add headers to, a copy of the properties. */
  private traceContext(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    options: PublishOptions,
  ): PublishContext {
    const properties = options.headers === undefined ? { ...options } : { ...options, headers: { ...options.headers } };
    return {
      server: this.ch.server,
      channel: this.ch.id,
      exchange,
      routingKey,
      properties,
      body,
      mandatory: options.mandatory === true,
      confirm: this.confirming,
    };
  }

  /**
   * A publish nobody waits on (warren/amqplib's, whose publish returns a boolean): written now,
   * traced or not, when nothing holds it back, with no promise made; otherwise it goes the way
   * of publish(), and its promise is the caller's to watch. Throws on a bad argument when written
   * now, as publish() rejects.
   */
  publishUnawaited(
    exchange: string,
    routingKey: string,
    body: string | Uint8Array,
    options: PublishOptions,
  ): Promise<void> | undefined {
    if (this.ch.gate !== "open" || !this.flowActive || this.selectQueued || this.confirming)
      return this.publish(exchange, routingKey, body, options);
    const bytes = toBytes(body);
    if (bytes instanceof TypeError) throw bytes;
    if (!publishTrace.hasSubscribers) return void this.write(exchange, routingKey, bytes, options);
    const ctx = this.traceContext(exchange, routingKey, bytes, options);
    traced(publishTrace, ctx, () => this.write(exchange, routingKey, bytes, ctx.properties as PublishOptions));
    return undefined;
  }

  /** publish(); `hasTurn`: the confirm window has just made room for this one (whenRoom). */
  private send(
    exchange: string,
    routingKey: string,
    body: string | Uint8Array,
    options: PublishOptions,
    hasTurn: boolean,
  ): Promise<void> {
    const gate = this.ch.gate;
    if (gate === "recovering")
      return this.timing(
        this.ch.afterRecovery("publish", options.signal, () => this.send(exchange, routingKey, body, options, false)),
      );
    if (gate === "closed") return Promise.reject(this.ch.closedError());
    const bytes = toBytes(body);
    if (bytes instanceof TypeError) return Promise.reject(bytes);
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError("publish aborted before it was sent"));
    const timeout = options.timeout;
    if (timeout !== undefined && !isTimeout(timeout)) return Promise.reject(badTimeout("publish", timeout));
    // channel.flow active=false (spec channel.flow): the broker asked for no content until it
    // says active again; or confirm.select is queued, and only publishes written after it are
    // counted. The publish waits unsent; those waiting go out in their order.
    if (!this.flowActive || this.selectQueued)
      return this.stopped.wait(
        "publish (stopped by channel.flow or a queued confirm.select; not sent)",
        { signal },
        () => this.send(exchange, routingKey, body, options, false),
      );
    if (this.confirming && !hasTurn && !this.confirms.hasRoom)
      return this.timing(
        this.confirms.whenRoom({ signal, timeout }, () => this.send(exchange, routingKey, body, options, true)),
      );
    const onConfirm = options.onConfirm;
    if (onConfirm !== undefined && !this.confirming)
      return Promise.reject(new TypeError("publish: onConfirm needs confirm mode (call confirmSelect first)"));
    try {
      this.write(exchange, routingKey, bytes, options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (onConfirm !== undefined)
      this.confirms.track(
        new Notify(
          onConfirm,
          this.republisher(exchange, routingKey, bytes, options),
          mandatory(exchange, routingKey, bytes, options),
        ),
      );
    else if (this.confirming) {
      const confirmed = this.confirms.add(
        this.republisher(exchange, routingKey, bytes, options),
        mandatory(exchange, routingKey, bytes, options),
      );
      return signal ? bounded(confirmed, { signal }, "publish (sent; waiting for the broker's confirm)") : confirmed;
    }
    const written = this.ch.out.writable();
    if (written === RESOLVED) return written;
    const drained = signal
      ? bounded(
          written,
          { signal },
          "publish (sent; waiting for the socket to drain or the connection to be unblocked)",
        )
      : written;
    // With onConfirm, the outcome of a publish written is the callback's, a lost connection's
    // included: the wait for the socket only resolves.
    return onConfirm === undefined ? drained : drained.then(undefined, resolveAnyway);
  }

  /** Hand one publish to the socket, every check passed; throws on a bad argument, with nothing written. */
  private write(exchange: string, routingKey: string, bytes: Uint8Array, options: PublishOptions): void {
    this.ch.writeDeferredAcks();
    this.ch.out.publish(this.ch.id, exchange, routingKey, options.mandatory ?? false, options, bytes);
    this.ch.counts.sent++;
  }

  /** A publish that waits before it is sent: counted in the stats when the wait times out (once, however many waits it passed). */
  private timing(waiting: Promise<void>): Promise<void> {
    return waiting.catch((e: unknown) => {
      if (e instanceof TimeoutError && !timeoutsCounted.has(e)) {
        timeoutsCounted.add(e);
        this.ch.counts.timedOut++;
      }
      throw e;
    });
  }

  /** With recovery.republishUnconfirmed: how a publish still unconfirmed when the connection goes is sent again. */
  private republisher(
    exchange: string,
    routingKey: string,
    bytes: Uint8Array,
    options: PublishOptions,
  ): (() => Promise<void>) | undefined {
    if (!this.ch.republishes) return undefined;
    // Sent again, a publish with onConfirm waits as a promise (recovery settles the first entry
    // by it), so that the callback is called once.
    if (options.onConfirm === undefined) return () => this.send(exchange, routingKey, bytes, options, false);
    return () => {
      const { onConfirm: _, ...again } = options;
      return this.send(exchange, routingKey, bytes, again, false);
    };
  }

  /** publishBatch (Channel.publishBatch says what it promises). */
  publishBatch(messages: readonly Publication[]): Promise<void> {
    if (!Array.isArray(messages))
      return Promise.reject(new TypeError(`publishBatch takes an array of messages, got ${typeof messages}`));
    const outcome = new BatchOutcome(messages.length);
    this.sendBatch(messages, 0, outcome, false);
    return outcome.done;
  }

  /** publishBatch() from message `from` on; `hasTurn`: the confirm window let it go on, as send()'s. */
  private sendBatch(messages: readonly Publication[], from: number, outcome: BatchOutcome, hasTurn: boolean): void {
    const written: number[] = [];
    // What would make publish() wait or trace sends the batch through publish(), in its order.
    // The channel's state cannot change within this loop (nothing in it reads the socket), so
    // it is read once; a message's own signal or timeout is read per message.
    let each = this.ch.gate !== "open" || !this.flowActive || this.selectQueued || publishTrace.hasSubscribers;
    let turn = hasTurn;
    for (let i = from; i < messages.length; i++) {
      const m = messages[i];
      if (typeof m !== "object" || m === null) {
        outcome.failed(
          i,
          new TypeError(
            `publishBatch: message #${i} must be an object { exchange, routingKey, body, options? }, got ${m === null ? "null" : typeof m}`,
          ),
        );
        continue;
      }
      const { exchange, routingKey, body, options = NO_OPTIONS } = m;
      // A message with a signal, timeout or onConfirm of its own goes through publish(), and so,
      // to stay in order behind it, does the rest of the batch.
      each ||= options.signal !== undefined || options.timeout !== undefined || options.onConfirm !== undefined;
      if (each) {
        outcome.follow(i, this.publish(exchange, routingKey, body, options));
        continue;
      }
      // The batch waits its turn behind the publishes made before it; once it has its turn, it
      // goes on while the window has room, and out of room it goes on first (pause).
      if (this.confirming) {
        if (!turn && !this.confirms.hasRoom) {
          this.confirms
            .whenRoom({}, async () => this.sendBatch(messages, i, outcome, true))
            .catch((e: unknown) => outcome.failFrom(i, e));
          return;
        }
        if (turn && this.confirms.count >= this.confirms.limit) {
          this.confirms.pause(() => this.sendBatch(messages, i, outcome, true));
          return;
        }
        turn = true;
      }
      const bytes = toBytes(body);
      try {
        if (bytes instanceof TypeError) throw bytes;
        this.write(exchange, routingKey, bytes, options);
      } catch (e) {
        outcome.failed(i, e);
        continue;
      }
      if (this.confirming)
        this.confirms.track(
          new BatchEntry(
            outcome,
            i,
            this.republisher(exchange, routingKey, bytes, options),
            mandatory(exchange, routingKey, bytes, options),
          ),
        );
      else written.push(i);
    }
    if (written.length === 0) return;
    // As awaited publish() calls would: done once the socket can take more.
    this.ch.out.writable().then(
      () => written.forEach(() => outcome.sent()),
      (e: unknown) => written.forEach((i) => outcome.failed(i, e)),
    );
  }

  /** confirm.select (Channel.confirmSelect says what it promises). */
  async confirmSelect(options: ConfirmSelectOptions): Promise<void> {
    const limit = options.maxUnconfirmed ?? Infinity;
    if (limit !== Infinity && !(Number.isSafeInteger(limit) && limit >= 1))
      throw new RangeError(`confirmSelect: maxUnconfirmed must be a positive integer, got ${String(limit)}`);
    this.confirms.limit = limit;
    // The broker numbers the publishes that follow confirm.select on the wire (RabbitMQ
    // "Publisher Confirms"), not those after select-ok: counting starts as the method is
    // written, and a publish made before that would not be counted, so it waits.
    if (!this.confirming && this.ch.callBusy) this.selectQueued = true;
    const written = () => {
      this.confirming = true;
      this.selectQueued = false;
      this.resume(); // right behind confirm.select on the wire
    };
    try {
      await this.ch.confirmSelect({ timeout: options.timeout, signal: options.signal, onSend: written });
    } finally {
      // Never written (aborted, or the channel closed first): the publishes waiting go on without it.
      if (this.selectQueued) {
        this.selectQueued = false;
        this.resume();
      }
    }
  }

  /** waitForConfirms (Channel.waitForConfirms says what it promises). */
  waitForConfirms(options: WaitOptions): Promise<void> {
    if (options.timeout !== undefined && !isTimeout(options.timeout))
      return Promise.reject(badTimeout("waitForConfirms", options.timeout));
    return this.confirms.waitAll(options);
  }

  // What the broker sends that concerns publishing (channel.ts routes it here).

  /** basic.ack or basic.nack of a publish (the channel checked that it is in confirm mode). */
  confirmed(m: MethodOf<"basic.ack"> | MethodOf<"basic.nack">): void {
    this.confirms.confirm(m.deliveryTag, m.multiple, m.name === "basic.nack");
  }

  /** basic.return: in confirm mode, the publish it matches rejects on its ack. */
  returned(fields: ReturnedMessage["fields"], body: Buffer): void {
    if (this.confirming) this.confirms.returned(fields, body);
  }

  /** channel.flow (spec channel.flow): stop or let go the publishes. */
  flow(active: boolean): void {
    this.flowActive = active;
    if (active) this.resume();
  }

  /** Let the stopped publishes go, in order, once neither channel.flow nor a queued confirm.select stops them. */
  resume(): void {
    if (this.flowActive && !this.selectQueued) this.stopped.wake();
  }

  // The channel's fate.

  /**
   * The connection was lost and the channel will be recovered. The unconfirmed publishes reject
   * with `reason` (the broker may or may not have them), or with republishUnconfirmed are handed
   * back to be sent again on the new channel. Confirm numbers start again at 1 there (RabbitMQ
   * "Publisher Confirms"); its channel.flow is active. waitForConfirms() callers wait on when
   * some are kept.
   */
  suspend(reason: AmqpError): Unconfirmed[] {
    const kept: Unconfirmed[] = [];
    for (const u of this.confirms.take()) {
      if (typeof u === "object" && u.republish) kept.push(u);
      else settle(u, reason);
    }
    this.confirms.restart();
    if (kept.length === 0) this.confirms.failWaiters(reason);
    this.flowActive = true;
    return kept;
  }

  /** The channel is gone: every publish waiting or unconfirmed, and every waitForConfirms, rejects with `reason`. */
  fail(reason: AmqpError): void {
    this.confirms.fail(reason);
    this.stopped.fail(reason); // never sent
  }
}

/** A publish body as bytes, or the TypeError that refuses it. */
function toBytes(body: unknown): Uint8Array | TypeError {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return bytes instanceof Uint8Array
    ? bytes
    : new TypeError(`publish body must be a string, Buffer or Uint8Array, got ${typeof body}`);
}

/** A mandatory publish: what the confirm window matches a basic.return against. */
function mandatory(
  exchange: string,
  routingKey: string,
  body: Uint8Array,
  options: PublishOptions,
): Published | undefined {
  return options.mandatory === true ? { exchange, routingKey, body } : undefined;
}
