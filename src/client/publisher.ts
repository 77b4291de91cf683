/**
 * A publisher that heals (conn.createPublisher()): confirm-mode publishes on a channel of its
 * own that survive the channel errors a publish causes.
 *
 * AMQP closes a channel over one bad publish (spec 1.8.3.1 basic.publish: a missing exchange is
 * a channel exception, 404; RabbitMQ adds 406 for a message over its max_message_size and 403
 * for an exchange the user may not write to), and with it every publish the channel had not
 * confirmed. On that close the publisher
 * - rejects the publish that caused it with PublishRefusedError (its exchange and routing key,
 *   the close error as `cause`): sending it again would fail the same way;
 * - rejects the other unconfirmed ones with PublishInterruptedError (they may or may not have
 *   reached a queue; `recoverable`), or with `republish` sends them again, in their order;
 * - opens a fresh channel in confirm mode and sends what was published meanwhile after them.
 * A lost connection is automatic recovery's business (its channel is restored, or, without
 * recovery, every publish rejects with the connection's close error, as on any channel).
 */
import { EventEmitter } from "node:events";
import type { Channel } from "./channel.js";
import type { PublishOptions } from "./channel-options.js";
import { AmqpError, ChannelClosedError, ConnectionClosedError, clientClose } from "./errors.js";

/** Options of conn.createPublisher(). */
export interface PublisherOptions {
  /** At most this many publishes unconfirmed at once (confirmSelect's maxUnconfirmed). Default: no limit. */
  maxUnconfirmed?: number;
  /**
   * Send the publishes a channel error interrupted again on the fresh channel, ahead of newer
   * ones (at-least-once: one that had reached a queue arrives twice). Default false: they reject
   * with PublishInterruptedError.
   */
  republish?: boolean;
}

/** What a Publisher emits. */
export interface PublisherEvents {
  /** A publish closed the channel and the publisher carries on with a fresh one: the close error and what became of the unconfirmed publishes. */
  healed: [info: { error: AmqpError; refused: number; interrupted: number; republished: number }];
}

/** The publish that closed the channel: sending it again fails the same way. */
export class PublishRefusedError extends AmqpError {
  override name = "PublishRefusedError";
  readonly exchange: string;
  readonly routingKey: string;
  /** The reply code of the channel's close: 404, 406, 403. */
  readonly replyCode: number;
  constructor(exchange: string, routingKey: string, cause: ChannelClosedError) {
    super(`publish to exchange "${exchange}" with routing key "${routingKey}" refused: ${cause.message}`, { cause });
    this.exchange = exchange;
    this.routingKey = routingKey;
    this.replyCode = cause.replyCode;
  }
}

/** Another publish closed the channel before this one was confirmed: it may or may not have reached a queue; publishing it again is safe for an at-least-once consumer. */
export class PublishInterruptedError extends AmqpError {
  override name = "PublishInterruptedError";
  readonly exchange: string;
  readonly routingKey: string;
  readonly recoverable = true;
  constructor(exchange: string, routingKey: string, cause: AmqpError) {
    super(
      `publish to exchange "${exchange}" with routing key "${routingKey}" interrupted before its confirm: ${cause.message}`,
      { cause },
    );
    this.exchange = exchange;
    this.routingKey = routingKey;
  }
}

interface Pending {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: string | Uint8Array;
  readonly options: PublishOptions;
  resolve(): void;
  reject(err: unknown): void;
  /** The channel it was last sent on. */
  channel?: Channel;
}

/** A confirm-mode publisher that carries on after a channel error (see the module comment). */
export class Publisher extends EventEmitter<PublisherEvents> {
  readonly #open: () => Promise<Channel>;
  readonly #options: PublisherOptions;
  #channel: Channel | undefined;
  #opening: Promise<void> | undefined;
  /** Waiting for a channel, in order. */
  #queue: Pending[] = [];
  /** Sent and not settled, in the order they were sent. */
  readonly #inflight = new Set<Pending>();
  /** Set by close(), or once the connection is gone: publishes reject with it. */
  #closed: AmqpError | undefined;
  /** Every publish not settled yet (close() waits for them). */
  readonly #unsettled = new Set<Promise<void>>();

  /** @internal use conn.createPublisher() */
  constructor(open: () => Promise<Channel>, options: PublisherOptions) {
    super();
    this.#open = open;
    this.#options = options;
  }

  /** @internal Opens the first channel (createPublisher resolves once it is in confirm mode). */
  async start(): Promise<this> {
    this.#channel = await this.#openChannel();
    return this;
  }

  /** The channel it publishes on now (a new one after each heal), or undefined while it opens one. */
  get channel(): Channel | undefined {
    return this.#channel;
  }

  /**
   * basic.publish in confirm mode: resolves on the broker's ack; rejects with NackError,
   * ReturnedError (mandatory), PublishRefusedError (this publish closed the channel),
   * PublishInterruptedError (another one did, before this was confirmed), or what any publish
   * rejects with. Publishes go out in the order of the calls, across heals.
   */
  publish(
    exchange: string,
    routingKey: string,
    body: string | Uint8Array,
    options: PublishOptions = {},
  ): Promise<void> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    const settled = new Promise<void>((resolve, reject) => {
      const p: Pending = { exchange, routingKey, body, options, resolve, reject };
      const ch = this.#channel;
      if (ch !== undefined && !ch.closed && this.#queue.length === 0) this.#send(p, ch);
      else {
        this.#queue.push(p);
        this.#ensureChannel();
      }
    });
    this.#unsettled.add(settled);
    const forget = () => void this.#unsettled.delete(settled);
    settled.then(forget, forget);
    return settled;
  }

  /** Waits for every publish made to settle, then closes the channel; later publishes reject. Idempotent. */
  async close(): Promise<void> {
    this.#closed ??= clientClose("channel");
    while (this.#unsettled.size > 0) await Promise.allSettled([...this.#unsettled]);
    const ch = this.#channel;
    this.#channel = undefined;
    if (ch !== undefined && !ch.closed) await ch.close();
  }

  /** `await using publisher = await conn.createPublisher()`: close() at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #send(p: Pending, ch: Channel): void {
    p.channel = ch;
    this.#inflight.add(p);
    ch.publish(p.exchange, p.routingKey, p.body, p.options).then(
      () => {
        if (this.#inflight.delete(p)) p.resolve();
      },
      (err: unknown) => {
        // Rejected by the channel's close: #heal decides (refused, interrupted or sent again).
        if (ch.closed && p.channel === ch && err === ch.reason) return;
        if (this.#inflight.delete(p)) p.reject(err);
      },
    );
  }

  async #openChannel(): Promise<Channel> {
    const ch = await this.#open();
    await ch.confirmSelect(
      this.#options.maxUnconfirmed === undefined ? {} : { maxUnconfirmed: this.#options.maxUnconfirmed },
    );
    ch.once("close", (err) => void this.#heal(ch, err));
    return ch;
  }

  #ensureChannel(): void {
    if (this.#opening !== undefined || this.#channel?.closed === false) return;
    this.#opening = this.#openChannel().then(
      (ch) => {
        this.#opening = undefined;
        this.#channel = ch;
        const queue = this.#queue;
        this.#queue = [];
        for (const p of queue) this.#send(p, ch);
      },
      (err: unknown) => {
        this.#opening = undefined;
        // The connection is gone (or closing): so is the publisher. Otherwise the next publish tries again.
        if (err instanceof ConnectionClosedError) this.#closed ??= err;
        const queue = this.#queue;
        this.#queue = [];
        for (const p of queue) p.reject(err);
      },
    );
  }

  /** The channel closed: settle what it had not confirmed, and carry on with a fresh one. */
  async #heal(ch: Channel, err: AmqpError | undefined): Promise<void> {
    if (this.#channel === ch) this.#channel = undefined;
    // The confirms read before the close settle their publishes in promise reactions still
    // queued: let them run, so that only what the broker never confirmed is left.
    await new Promise((resolve) => setImmediate(resolve));
    const orphans = [...this.#inflight].filter((p) => p.channel === ch);
    for (const p of orphans) this.#inflight.delete(p);
    const reason = err ?? this.#closed ?? clientClose("channel");
    const culprit = reason instanceof ChannelClosedError ? culpritOf(reason, orphans) : undefined;
    if (culprit !== undefined)
      culprit.reject(new PublishRefusedError(culprit.exchange, culprit.routingKey, reason as ChannelClosedError));
    const rest = orphans.filter((p) => p !== culprit);
    // Closed with its connection (a lost one that recovery restores does not close its channels): nothing to carry on on.
    if (err instanceof ConnectionClosedError) this.#closed ??= err;
    const again = this.#options.republish === true && this.#closed === undefined;
    if (again) this.#queue.unshift(...rest);
    else for (const p of rest) p.reject(new PublishInterruptedError(p.exchange, p.routingKey, reason));
    if (err === undefined || this.#closed !== undefined) {
      for (const p of this.#queue.splice(0)) p.reject(this.#closed ?? reason);
      return;
    }
    this.emit("healed", {
      error: err,
      refused: culprit === undefined ? 0 : 1,
      interrupted: again ? 0 : rest.length,
      republished: again ? rest.length : 0,
    });
    if (this.#queue.length > 0) this.#ensureChannel();
  }
}

/**
 * Which unconfirmed publish closed the channel: RabbitMQ names the exchange (404 "no exchange
 * 'x' in vhost '/'", 403 "access to exchange 'x' in vhost '/' refused") or the size (406
 * "message size N is larger than configured max size M"); the first such in the order sent,
 * since the broker takes a channel's publishes in order. None when the close was not a publish's.
 */
function culpritOf(err: ChannelClosedError, orphans: readonly Pending[]): Pending | undefined {
  if (err.method !== "basic.publish" || orphans.length === 0) return undefined;
  const exchange = /exchange '(.*)' in vhost '/.exec(err.replyText)?.[1];
  const size = /message size (\d+)/.exec(err.replyText)?.[1];
  const match = (p: Pending) =>
    exchange !== undefined ? p.exchange === exchange : size !== undefined ? byteLength(p.body) === Number(size) : false;
  return orphans.find(match) ?? orphans[0];
}

function byteLength(body: string | Uint8Array): number {
  return typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
}
