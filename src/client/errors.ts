/**
 * Typed errors. Every error warren raises is an AmqpError. A close by the broker becomes a
 * ChannelClosedError or ConnectionClosedError, or one of their subclasses chosen by reply code
 * so a user can `catch (e) { if (e instanceof NotFoundError) ... }`.
 *
 * Reply codes (spec "constants"): 3xx/4xx close a channel, 5xx the connection; RabbitMQ also
 * closes connections with 320 (forced) and 403 (authentication failure, with the
 * authentication_failure_close capability).
 */
import { AmqpError, FrameError } from "../protocol/errors.js";
import { ReplyCode, replyCodeName } from "../protocol/constants.js";
import { methodIds, type MethodName } from "../protocol/methods.js";

export { AmqpError, FrameError };

/** Who ended the channel or connection: the broker, the user's code, or warren itself (a lost socket, a timeout, a protocol violation by the peer). */
export type Initiator = "server" | "client" | "library";

/** Why a channel or connection closed: the close method's fields, and who closed it. */
export interface CloseReason {
  replyCode: number;
  replyText: string;
  classId?: number;
  methodId?: number;
  initiatedBy: Initiator;
  cause?: unknown;
}

/** Reply codes after which trying again can succeed: transient conditions, not refusals. */
const RECOVERABLE: ReadonlySet<number> = new Set([
  0,
  ReplyCode.CONNECTION_FORCED,
  ReplyCode.RESOURCE_LOCKED,
  ReplyCode.RESOURCE_ERROR,
  ReplyCode.INTERNAL_ERROR,
]);

function methodNameOf(classId: number | undefined, methodId: number | undefined): MethodName | undefined {
  if (!classId) return undefined;
  for (const [name, [c, m]] of Object.entries(methodIds))
    if (c === classId && m === methodId) return name as MethodName;
  return undefined;
}

abstract class ClosedError extends AmqpError {
  readonly replyCode: number;
  readonly replyText: string;
  /** The class and method that failed (0 when the close was not caused by a method). */
  readonly classId: number;
  readonly methodId: number;
  /** The failing method's name, e.g. "queue.declare", when the broker named one. */
  readonly method: MethodName | undefined;
  readonly initiatedBy: Initiator;
  /** Whether the same operation could succeed if tried again (on a new channel or connection). */
  readonly recoverable: boolean;

  constructor(what: string, r: CloseReason) {
    const method = methodNameOf(r.classId, r.methodId);
    const code = r.replyCode ? `${r.replyCode} ${replyCodeName(r.replyCode)}` : "";
    const by = r.initiatedBy === "server" ? "by the broker" : r.initiatedBy === "client" ? "by the client" : "";
    super(
      [`${what} closed`, by, code && `(${code})`].filter(Boolean).join(" ") +
        `: ${r.replyText}` +
        (method ? ` [${method}]` : ""),
      r.cause === undefined ? undefined : { cause: r.cause },
    );
    this.replyCode = r.replyCode;
    this.replyText = r.replyText;
    this.classId = r.classId ?? 0;
    this.methodId = r.methodId ?? 0;
    this.method = method;
    this.initiatedBy = r.initiatedBy;
    this.recoverable =
      RECOVERABLE.has(r.replyCode) || (r.initiatedBy === "library" && r.replyCode !== ReplyCode.FRAME_ERROR);
  }
}

/** The channel was closed: every call pending or queued on it rejects with this (or a subclass). */
export class ChannelClosedError extends ClosedError {
  override name = "ChannelClosedError";
  constructor(r: CloseReason) {
    super("channel", r);
  }
}
/** 404: the exchange or queue does not exist (a passive declare, a bind, a publish to a missing exchange). */
export class NotFoundError extends ChannelClosedError {
  override name = "NotFoundError";
}
/** 403 on a channel: e.g. declaring a name starting with "amq.", or no permission on the resource. */
export class AccessRefusedError extends ChannelClosedError {
  override name = "AccessRefusedError";
}
/** 405: the queue is exclusive to another connection. */
export class ResourceLockedError extends ChannelClosedError {
  override name = "ResourceLockedError";
}
/** 406: a redeclare with other properties, an unknown delivery tag, a delete if-unused of a used queue. */
export class PreconditionFailedError extends ChannelClosedError {
  override name = "PreconditionFailedError";
}

/** The connection was closed or lost: every call on it and its channels rejects with this (or a subclass). */
export class ConnectionClosedError extends ClosedError {
  override name = "ConnectionClosedError";
  constructor(r: CloseReason) {
    super("connection", r);
  }
}
/** Wrong user name or password (403 at the handshake), or the mechanism was refused. */
export class AuthenticationError extends ConnectionClosedError {
  override name = "AuthenticationError";
}
/** 320: an operator or the broker closed the connection (rabbitmqctl close_connection, shutdown). */
export class ConnectionForcedError extends ConnectionClosedError {
  override name = "ConnectionForcedError";
}
/** 402: the virtual host path is malformed. */
export class InvalidPathError extends ConnectionClosedError {
  override name = "InvalidPathError";
}
/** 530: e.g. the virtual host does not exist or the user may not use it. */
export class NotAllowedError extends ConnectionClosedError {
  override name = "NotAllowedError";
}
/** 506: the broker ran short of a resource (channels, memory). */
export class ResourceError extends ConnectionClosedError {
  override name = "ResourceError";
}
/** 540: the broker does not implement what was asked (e.g. basic.publish immediate). */
export class NotImplementedError extends ConnectionClosedError {
  override name = "NotImplementedError";
}
/** 541: the broker failed internally. */
export class InternalError extends ConnectionClosedError {
  override name = "InternalError";
}
/**
 * The broker stopped confirming: publishes waited for a confirm on a channel and none came for
 * `confirmTimeout` ms (confirm-watch.ts). The connection is lost with this; with recovery it
 * reconnects, another host first.
 */
export class ConfirmTimeoutError extends ConnectionClosedError {
  override name = "ConfirmTimeoutError";
}
/** 501-505 from the broker: it says this client broke the protocol. */
export class ProtocolViolationError extends ConnectionClosedError {
  override name = "ProtocolViolationError";
}

/** A wait ran past its time limit (connect, a synchronous method, an RPC call). */
export class TimeoutError extends AmqpError {
  override name = "TimeoutError";
  readonly recoverable = true;
}

/** The broker nacked a publish in confirm mode: it did not take responsibility for the message. */
export class NackError extends AmqpError {
  override name = "NackError";
  readonly recoverable = true;
}

/** The RPC server's handler failed for this call (its error reply, rpc-server.ts); `message` is the handler's. */
export class RpcError extends AmqpError {
  override name = "RpcError";
  readonly recoverable = false;
}

/**
 * A mandatory publish in confirm mode that no queue took: the broker handed it back
 * (basic.return, e.g. 312 NO_ROUTE) before it acked it, so the ack means nothing was delivered.
 */
export class ReturnedError extends AmqpError {
  override name = "ReturnedError";
  /** Publishing it again as it was would be returned again; bind a queue first. */
  readonly recoverable = false;
  constructor(
    readonly replyCode: number,
    readonly replyText: string,
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super(
      `the broker returned the mandatory publish to ${JSON.stringify(exchange)} with routing key ${JSON.stringify(routingKey)}: ${replyCode} ${replyText}`,
    );
  }
}

/**
 * Some messages of a publishBatch() failed: `failures` names each by its index in the batch,
 * with what publish() would have rejected with for it (NackError, ReturnedError, a close reason,
 * a bad argument). Every other message of the batch went out (and, in confirm mode, was acked).
 */
export class PublishBatchError extends AmqpError {
  override name = "PublishBatchError";
  /** Whether publishing the failed messages again can help: whether it can for every one of them. */
  readonly recoverable: boolean;
  constructor(
    readonly failures: readonly { readonly index: number; readonly error: unknown }[],
    size: number,
  ) {
    const first = failures[0]!;
    super(
      `${failures.length} of the ${size} messages of the batch failed; the first, #${first.index}: ${first.error instanceof Error ? first.error.message : String(first.error)}`,
    );
    this.recoverable = failures.every((f) => (f.error as { recoverable?: unknown } | undefined)?.recoverable === true);
  }
}

/**
 * The broker cancelled a consumer (basic.cancel, consumer_cancel_notify): its queue was deleted,
 * the node hosting it went away, or (RabbitMQ 4.x quorum queues) a delivery stayed unacked past
 * the consumer timeout, which returns that message to the queue.
 */
export class ConsumerCancelledError extends AmqpError {
  override name = "ConsumerCancelledError";
  readonly consumerTag: string;
  constructor(consumerTag: string) {
    super(
      `consumer ${consumerTag} was cancelled by the broker: its queue was deleted or became unavailable, or a delivery stayed unacknowledged past the consumer timeout (quorum queues); consume again once the queue is back, and ack within consumer_timeout / x-consumer-timeout`,
    );
    this.consumerTag = consumerTag;
  }
}

/** A consumer cancelled with cancel() (or its signal) was asked to pause or resume: it has ended; consume again. */
export class ConsumerEndedError extends AmqpError {
  override name = "ConsumerEndedError";
  readonly consumerTag: string;
  constructor(consumerTag: string, message: string) {
    super(message);
    this.consumerTag = consumerTag;
  }
}

/**
 * The broker refused a deprecated feature it no longer permits (RabbitMQ 4.3 and later, e.g.
 * `transient_nonexcl_queues`: a queue neither durable nor exclusive). RabbitMQ closes the
 * connection (541) with the feature's name; trying again cannot help, so recovery does not.
 */
export class DeprecatedFeatureError extends ConnectionClosedError {
  override name = "DeprecatedFeatureError";
  override readonly recoverable = false;
  /** The deprecated feature, as RabbitMQ names it (`transient_nonexcl_queues`). */
  readonly feature: string;
  /** The rabbitmq.conf line that permits it again, on every node of the cluster. */
  readonly setting: string;
  constructor(r: CloseReason, feature: string) {
    super(r);
    this.feature = feature;
    this.setting = permitSetting(feature);
    this.message += ` (the broker no longer permits ${feature}; avoid it, or set "${this.setting}" in rabbitmq.conf on every node)`;
  }
}

/**
 * The broker closed the channel because a delivery stayed unacknowledged past its consumer
 * timeout (RabbitMQ's `consumer_timeout`, or the queue's `x-consumer-timeout`): 406, with the
 * channel's unacked deliveries requeued. Ack sooner, or raise the timeout.
 */
export class ConsumerTimeoutError extends PreconditionFailedError {
  override name = "ConsumerTimeoutError";
  /** The timeout the broker applied, in ms, when it said. */
  readonly timeout: number | undefined;
  constructor(r: CloseReason) {
    super(r);
    const ms = /Timeout value used: (\d+)/.exec(r.replyText)?.[1];
    this.timeout = ms === undefined ? undefined : Number(ms);
    this.message +=
      " (a delivery was not acknowledged within the consumer timeout; ack sooner, or raise consumer_timeout or the queue's x-consumer-timeout)";
  }
}

/**
 * The broker refused a queue argument (406, "invalid arg" or "inequivalent arg"): `argument`
 * names it. RabbitMQ 4.x refuses, among others, `x-queue-version: 1` (classic queues are version
 * 2 only), `x-max-priority` on a quorum queue (its priorities are built in: 0-31), and any
 * argument a queue type does not take (`x-delayed-retry-*` on a classic queue). "inequivalent":
 * the queue exists with another value of it.
 */
export class QueueArgumentError extends PreconditionFailedError {
  override name = "QueueArgumentError";
  readonly argument: string;
  readonly reason: "invalid" | "inequivalent";
  constructor(r: CloseReason, argument: string, reason: "invalid" | "inequivalent") {
    super(r);
    this.argument = argument;
    this.reason = reason;
    const hint = ARGUMENT_HINTS[argument];
    this.message += ` (queue argument ${argument}${reason === "inequivalent" ? ": the queue exists with another value; declare it as it is, or delete it first" : hint !== undefined ? `: ${hint}` : ": the broker does not take it for this queue"})`;
  }
}

const ARGUMENT_HINTS: Record<string, string> = {
  "x-queue-version": "RabbitMQ 4.0 and later have only version 2 classic queues; leave it out",
  "x-max-priority":
    "a quorum queue's priorities are built in on RabbitMQ 4.x (0-31, a message without one counts as 4); leave it out",
};

/**
 * A queue argument the broker accepted and ignores: `x-queue-mode` (lazy queues), which has no
 * effect since RabbitMQ 3.12, whose classic queues all keep their messages on disk as lazy ones
 * did. Emitted as the channel's "warning" event, or as a process warning when nobody listens.
 */
export class IgnoredArgumentWarning extends Error {
  override name = "IgnoredArgumentWarning";
  constructor(
    readonly argument: string,
    what: string,
  ) {
    super(what);
  }
}

/**
 * The broker will not do what was asked, and says so only in its log: RabbitMQ 4.3 and later
 * deny deprecated features by default, and some it ignores rather than refuse (`global_qos`: a
 * basic.qos with global=true is answered qos-ok and applied per consumer). Emitted as the
 * channel's "warning" event, or as a process warning when nobody listens.
 */
export class DeprecatedFeatureWarning extends Error {
  override name = "DeprecatedFeatureWarning";
  /** The deprecated feature, as RabbitMQ names it (`global_qos`). */
  readonly feature: string;
  /** The rabbitmq.conf line that permits it again. */
  readonly setting: string;
  constructor(feature: string, what: string) {
    const setting = permitSetting(feature);
    super(`${what}: RabbitMQ 4.3 and later deny ${feature} by default; set "${setting}" on every node to permit it`);
    this.feature = feature;
    this.setting = setting;
  }
}

/** The rabbitmq.conf line that permits a deprecated feature again (RabbitMQ "Deprecated Features"). */
function permitSetting(feature: string): string {
  return `deprecated_features.permit.${feature} = true`;
}

/** What emitOrWarn needs of an emitter (any EventEmitter). */
interface Emitter {
  listenerCount(event: string): number;
  emit(event: never, ...args: never[]): boolean;
}

/**
 * Tell the listeners of `event`, or with none a process warning (made only then): what the user
 * should hear of is never dropped, and never thrown into the event loop as an unheard "error".
 */
export function emitOrWarn<A extends unknown[]>(
  emitter: Emitter,
  event: string,
  args: A,
  warning: () => string | Error,
): void {
  if (emitter.listenerCount(event) > 0)
    (emitter.emit as unknown as (event: string, ...args: A) => boolean).call(emitter, event, ...args);
  else process.emitWarning(warning());
}

/** The operation was aborted by the caller's AbortSignal. */
export class AbortError extends AmqpError {
  override name = "AbortError";
}

/** @internal The reply text of a close this client asks for (channel.close, connection.close). */
export const CLIENT_CLOSE = "closed by the client";

/** @internal The reason a channel or connection closed by this client gives its pending calls. */
export function clientClose(level: "channel" | "connection"): ChannelClosedError | ConnectionClosedError {
  const r = { replyCode: ReplyCode.REPLY_SUCCESS, replyText: CLIENT_CLOSE, initiatedBy: "client" } as const;
  return level === "channel" ? new ChannelClosedError(r) : new ConnectionClosedError(r);
}

/** @internal A close this client asked for: not an error to report to consumers or "close" listeners. */
export function isClientClose(e: unknown): boolean {
  return e instanceof ClosedError && e.initiatedBy === "client";
}

/** @internal The error class for a close of this reply code at this level. */
export function closeError(
  level: "channel" | "connection",
  r: CloseReason,
  handshake = false,
): ChannelClosedError | ConnectionClosedError {
  if (level === "channel") {
    switch (r.replyCode) {
      case ReplyCode.NOT_FOUND:
        return new NotFoundError(r);
      case ReplyCode.ACCESS_REFUSED:
        return new AccessRefusedError(r);
      case ReplyCode.RESOURCE_LOCKED:
        return new ResourceLockedError(r);
      case ReplyCode.PRECONDITION_FAILED: {
        // RabbitMQ: "delivery acknowledgement on channel N timed out. Timeout value used: ..."
        if (/delivery acknowledgement on channel \d+ timed out/.test(r.replyText)) return new ConsumerTimeoutError(r);
        // RabbitMQ: "invalid arg 'x-queue-version' for queue 'q' ...", "inequivalent arg 'x-queue-type' for queue 'q' ..."
        const arg = /\b(invalid|inequivalent) arg '([^']+)' for queue/.exec(r.replyText);
        return arg !== null
          ? new QueueArgumentError(r, arg[2]!, arg[1] as "invalid" | "inequivalent")
          : new PreconditionFailedError(r);
      }
      default:
        return new ChannelClosedError(r);
    }
  }
  switch (r.replyCode) {
    case ReplyCode.ACCESS_REFUSED:
      return handshake || r.initiatedBy === "server" ? new AuthenticationError(r) : new ConnectionClosedError(r);
    case ReplyCode.CONNECTION_FORCED:
      return new ConnectionForcedError(r);
    case ReplyCode.INVALID_PATH:
      return new InvalidPathError(r);
    case ReplyCode.NOT_ALLOWED:
      return new NotAllowedError(r);
    case ReplyCode.RESOURCE_ERROR:
      return new ResourceError(r);
    case ReplyCode.NOT_IMPLEMENTED:
      return new NotImplementedError(r);
    case ReplyCode.INTERNAL_ERROR: {
      // RabbitMQ: "INTERNAL_ERROR - Feature `transient_nonexcl_queues` is deprecated. ..."
      const feature = /Feature `([\w.]+)` is deprecated/.exec(r.replyText)?.[1];
      return feature === undefined ? new InternalError(r) : new DeprecatedFeatureError(r, feature);
    }
    case ReplyCode.FRAME_ERROR:
    case ReplyCode.SYNTAX_ERROR:
    case ReplyCode.COMMAND_INVALID:
    case ReplyCode.CHANNEL_ERROR:
    case ReplyCode.UNEXPECTED_FRAME:
      return r.initiatedBy === "server" ? new ProtocolViolationError(r) : new ConnectionClosedError(r);
    default:
      return new ConnectionClosedError(r);
  }
}
