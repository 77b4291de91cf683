/**
 * Publishing on a channel: basic.publish one by one or in batches (publish-batch.ts), and
 * confirm mode (confirm.select, the confirm window of confirms.ts).
 */
import { ChannelCore } from "./channel-core.js";
import type { ConfirmSelectOptions, PublishOptions, WaitOptions } from "./channel-options.js";
import { publishTrace, traced, type PublishContext } from "./diagnostics.js";
import type { Published } from "./confirms.js";
import { AbortError, TimeoutError } from "./errors.js";
import { BatchEntry, BatchOutcome, type Publication } from "./publish-batch.js";
import { badTimeout, bounded, isTimeout } from "./wait.js";

const NO_OPTIONS: PublishOptions = {};
/** Publish timeouts already counted (a publish that waited for a recovery, then for room, fails once). */
const timeoutsCounted = new WeakSet<TimeoutError>();

/** The publishing half of a Channel (channel.ts), over the state machine of channel-core.ts. */
export abstract class PublishingChannel extends ChannelCore {
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
   * recovery.republishUnconfirmed is sent again and resolves on the new connection's confirm.
   */
  publish(exchange: string, routingKey: string, body: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    if (!publishTrace.hasSubscribers) return this.send(exchange, routingKey, body, options, false);
    // Traced (diagnostics.ts): the subscriber sees, and may add headers to, a copy of the properties.
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const properties = options.headers === undefined ? { ...options } : { ...options, headers: { ...options.headers } };
    const ctx: PublishContext = { server: this.server, channel: this.id, exchange, routingKey, properties, body: bytes, mandatory: options.mandatory === true, confirm: this.confirming };
    return traced(publishTrace, ctx, () => this.send(exchange, routingKey, bytes, ctx.properties as PublishOptions, false));
  }

  /** publish(); `hasTurn`: the confirm window has just made room for this one (whenRoom). */
  private send(exchange: string, routingKey: string, body: string | Uint8Array, options: PublishOptions, hasTurn: boolean): Promise<void> {
    if (this.state === "recovering" || this.state === "restoring") return this.timing(this.afterRecovery("publish", options.signal, () => this.send(exchange, routingKey, body, options, false)));
    // Once the connection is closing, a publish would follow connection.close, and the broker discards it.
    if (this.state !== "open" || this.host.closing) return Promise.reject(this.closedError());
    const bytes = toBytes(body);
    if (bytes instanceof TypeError) return Promise.reject(bytes);
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(new AbortError("publish aborted before it was sent"));
    const timeout = options.timeout;
    if (timeout !== undefined && !isTimeout(timeout)) return Promise.reject(badTimeout("publish", timeout));
    // channel.flow active=false (spec channel.flow): the broker asked for no content until it
    // says active again; or confirm.select is queued, and only publishes written after it are
    // counted. The publish is held, not sent; held publishes go out in their order.
    if (!this.flowActive || this.selectQueued) return this.held.wait("publish (held by channel.flow or a queued confirm.select; not sent)", { signal }, () => this.send(exchange, routingKey, body, options, false));
    if (this.confirming && !hasTurn && !this.confirms.hasRoom) return this.timing(this.confirms.whenRoom({ signal, timeout }, () => this.send(exchange, routingKey, body, options, true)));
    try {
      this.write(exchange, routingKey, bytes, options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.confirming) {
      const confirmed = this.confirms.add(this.republisher(exchange, routingKey, bytes, options), mandatory(exchange, routingKey, bytes, options));
      return signal ? bounded(confirmed, { signal }, "publish (sent; waiting for the broker's confirm)") : confirmed;
    }
    const written = this.host.out.writable();
    return signal ? bounded(written, { signal }, "publish (sent; waiting for the socket to drain or the connection to be unblocked)") : written;
  }

  /** Hand one publish to the socket, every check passed; throws on a bad argument, with nothing written. */
  private write(exchange: string, routingKey: string, bytes: Uint8Array, options: PublishOptions): void {
    if (this.tags.holding) this.tags.writeHeld();
    this.host.out.publish(this.id, exchange, routingKey, options.mandatory ?? false, options, bytes);
    this.counts.sent++;
  }

  /** A publish that waits before it is sent: counted in the stats when the wait times out (once, however many waits it passed). */
  private timing(waiting: Promise<void>): Promise<void> {
    return waiting.catch((e: unknown) => {
      if (e instanceof TimeoutError && !timeoutsCounted.has(e)) {
        timeoutsCounted.add(e);
        this.counts.timedOut++;
      }
      throw e;
    });
  }

  /** With recovery.republishUnconfirmed: how a publish still unconfirmed when the connection goes is sent again. */
  private republisher(exchange: string, routingKey: string, bytes: Uint8Array, options: PublishOptions): (() => Promise<void>) | undefined {
    return this.host.recovery?.republishUnconfirmed ? () => this.send(exchange, routingKey, bytes, options, false) : undefined;
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
    if (!Array.isArray(messages)) return Promise.reject(new TypeError(`publishBatch takes an array of messages, got ${typeof messages}`));
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
    let each = this.state !== "open" || this.host.closing || !this.flowActive || this.selectQueued || publishTrace.hasSubscribers;
    let turn = hasTurn;
    for (let i = from; i < messages.length; i++) {
      const m = messages[i];
      if (typeof m !== "object" || m === null) {
        outcome.failed(i, new TypeError(`publishBatch: message #${i} must be an object { exchange, routingKey, body, options? }, got ${m === null ? "null" : typeof m}`));
        continue;
      }
      const { exchange, routingKey, body, options = NO_OPTIONS } = m;
      // A message with a signal or timeout of its own goes through publish(), and so, to stay
      // in order behind it, does the rest of the batch.
      each ||= options.signal !== undefined || options.timeout !== undefined;
      if (each) {
        outcome.follow(i, this.publish(exchange, routingKey, body, options));
        continue;
      }
      // The batch waits its turn behind the publishes made before it; once it has its turn, it
      // goes on while the window has room, and out of room it goes on first (pause).
      if (this.confirming) {
        if (!turn && !this.confirms.hasRoom) {
          this.confirms.whenRoom({}, async () => this.sendBatch(messages, i, outcome, true)).catch((e: unknown) => outcome.failFrom(i, e));
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
      if (this.confirming) this.confirms.track(new BatchEntry(outcome, i, this.republisher(exchange, routingKey, bytes, options), mandatory(exchange, routingKey, bytes, options)));
      else written.push(i);
    }
    if (written.length === 0) return;
    // As awaited publish() calls would: done once the socket can take more.
    this.host.out.writable().then(
      () => written.forEach(() => outcome.sent()),
      (e: unknown) => written.forEach((i) => outcome.failed(i, e)),
    );
  }

  /**
   * Put the channel in confirm mode: every publish made after this call resolves on the broker's
   * ack, those made before select-ok arrives included. While confirm.select waits its turn behind
   * another synchronous call, publishes are held and go out after it. `maxUnconfirmed` bounds
   * the publishes awaiting their confirm (see ConfirmSelectOptions).
   */
  async confirmSelect(options: ConfirmSelectOptions = {}): Promise<void> {
    const limit = options.maxUnconfirmed ?? Infinity;
    if (limit !== Infinity && !(Number.isSafeInteger(limit) && limit >= 1)) throw new RangeError(`confirmSelect: maxUnconfirmed must be a positive integer, got ${String(limit)}`);
    this.confirms.limit = limit;
    // The broker numbers the publishes that follow confirm.select on the wire (RabbitMQ
    // "Publisher Confirms"), not those after select-ok: counting starts as the method is
    // written, and a publish made before that would not be counted, so it waits.
    if (!this.confirming && this.calls.busy) this.selectQueued = true;
    const written = () => {
      this.confirming = true;
      this.selectQueued = false;
      this.releaseHeld(); // right behind confirm.select on the wire
    };
    try {
      await this.call({ name: "confirm.select", noWait: false }, ["confirm.select-ok"], { timeout: options.timeout, signal: options.signal, onSend: written });
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
   * themselves stay pending and are still confirmed.
   */
  waitForConfirms(options: WaitOptions = {}): Promise<void> {
    if (options.timeout !== undefined && !isTimeout(options.timeout)) return Promise.reject(badTimeout("waitForConfirms", options.timeout));
    return this.confirms.waitAll(options);
  }
}

/** A publish body as bytes, or the TypeError that refuses it. */
function toBytes(body: unknown): Uint8Array | TypeError {
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return bytes instanceof Uint8Array ? bytes : new TypeError(`publish body must be a string, Buffer or Uint8Array, got ${typeof body}`);
}

/** A mandatory publish: what the confirm window matches a basic.return against. */
function mandatory(exchange: string, routingKey: string, body: Uint8Array, options: PublishOptions): Published | undefined {
  return options.mandatory === true ? { exchange, routingKey, body } : undefined;
}
