/** The options, results and events of Channel (public types). */
import type { BasicProperties } from "../protocol/properties.js";
import type { FieldTable } from "../protocol/table.js";
import type { AmqpError, DeprecatedFeatureWarning, IgnoredArgumentWarning } from "./errors.js";
import type { Message, ReturnedMessage } from "./message.js";

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
  /**
   * Delayed redelivery (quorum, RabbitMQ 4.3 and later; a classic queue, or an older broker,
   * refuses it with a QueueArgumentError): a message returned or failed waits before it is
   * delivered again, `min` ms times its delivery count (seen on 4.3.6: 300, 600, 900 ... ms for
   * min 300), at most `max` ms (default `min`). `type` says which wait: "failed" (rejected),
   * "returned" (nacked, a lost consumer), "all", or "disabled". x-delayed-retry-type, -min, -max.
   * Elsewhere, declareRetryTopology() does the same with TTL and dead-lettering.
   */
  delayedRetry?: { type: "all" | "failed" | "returned" | "disabled"; min: number; max?: number };
}
/** Options of Channel.publish(): the message's properties, and how the publish goes out. */
export interface PublishOptions extends BasicProperties {
  /**
   * Return the message (the "return" event) if no queue takes it; in confirm mode the publish
   * then rejects with ReturnedError instead of resolving on the ack that follows the return.
   */
  mandatory?: boolean;
  /**
   * With confirmSelect({ maxUnconfirmed }): the longest the publish waits for room in the
   * confirm window, in ms (TimeoutError; it is never sent then). Default: no limit.
   */
  timeout?: number;
  /**
   * Stops the publish's waits with AbortError: stopped by channel.flow (then it is never sent),
   * for the socket to drain or the connection to be unblocked, for the broker's confirm, or
   * (with recovery) for the connection to come back. Aborted after it was sent, the message may
   * still reach the broker.
   */
  signal?: AbortSignal;
  /**
   * In confirm mode: the publish's outcome comes here, once, instead of through the returned
   * promise: `err` undefined on the broker's ack; else a NackError (its nack), a ReturnedError
   * (an unroutable mandatory publish), what ended the channel or connection first (with
   * recovery.republishUnconfirmed, the outcome of the publish sent again), or what refused it
   * before it was written (a bad argument, a closed channel, a wait's timeout or signal, a
   * TypeError outside confirm mode). The returned promise then never rejects: it resolves once
   * the publish is written and the socket is below its high-water mark (or once it is refused),
   * so awaiting it is backpressure, leaving it is safe, and no promise waits per publish for its
   * confirm: a pipeline of thousands holds a small record each, not a promise (an onConfirm that
   * is no function rejects it, the one exception). What the function throws is printed as a
   * process warning. In publishBatch, a message with it goes through
   * publish(), and its outcome is the callback's, not the batch's.
   */
  onConfirm?: (err: Error | undefined) => void;
}
export interface ConfirmSelectOptions extends WaitOptions {
  /**
   * At most this many publishes unconfirmed at once: a publish past it waits, in order, until
   * the broker confirms an earlier one (bounded by its `timeout` and `signal`). Default: no limit.
   */
  maxUnconfirmed?: number;
}

/** What queue.declare-ok says: the queue's name (the broker's, for a server-named one) and its counts. */
export interface QueueDeclareResult {
  queue: string;
  messageCount: number;
  consumerCount: number;
}

/** A declare's `arguments` with its typed queue options written in under their x- names. */
export function queueArguments(o: QueueDeclareOptions): FieldTable {
  if (
    o.queueType === undefined &&
    o.deliveryLimit === undefined &&
    o.deadLetterStrategy === undefined &&
    o.delayedRetry === undefined
  )
    return o.arguments ?? {};
  const args: FieldTable = { ...o.arguments };
  if (o.queueType !== undefined) args["x-queue-type"] = o.queueType;
  if (o.deliveryLimit !== undefined) args["x-delivery-limit"] = o.deliveryLimit;
  if (o.deadLetterStrategy !== undefined) args["x-dead-letter-strategy"] = o.deadLetterStrategy;
  if (o.delayedRetry !== undefined) {
    args["x-delayed-retry-type"] = o.delayedRetry.type;
    args["x-delayed-retry-min"] = o.delayedRetry.min;
    if (o.delayedRetry.max !== undefined) args["x-delayed-retry-max"] = o.delayedRetry.max;
  }
  return args;
}

/** The events a Channel emits. */
export interface ChannelEvents {
  /** A mandatory publish could not be routed. */
  return: [msg: ReturnedMessage];
  /** The channel closed; err is undefined for a close by this client. */
  close: [err: AmqpError | undefined];
  /** The broker cancelled a consumer (consumer_cancel_notify). */
  cancel: [consumerTag: string];
  /** A delivery is still unsettled at `warnAt` of the consumer's `consumerTimeout` (ms held so far). */
  consumerTimeoutWarning: [msg: Message, heldFor: number];
  /** A consumer callback threw or rejected. Without a listener, the error is printed as a process warning. */
  consumerError: [err: unknown, msg: Message];
  /** The broker will not do what a call asked, though it answered ok. Without a listener, a process warning. */
  warning: [warning: DeprecatedFeatureWarning | IgnoredArgumentWarning];
}
