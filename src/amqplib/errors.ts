/**
 * amqplib's errors, as existing code matches on them: an operation refused by the broker
 * ("Operation failed: QueueDeclare; 404 (NOT-FOUND) with message ...") or a channel it closed
 * ("Channel closed by server: ..."), with `code`, `classId` and `methodId`; "Connection closed:
 * ..." with `code` for the connection, and "Channel ended, no reply will be forthcoming" for a
 * call it left unanswered; IllegalOperationError for a call on a closed channel or connection.
 */
import { ChannelClosedError, ConnectionClosedError, ReplyCode, type AmqpError } from "../index.js";
import { safeEmit } from "./emit.js";

/** A call on a channel or connection that is closed (amqplib's own class, by name and fields). */
export class IllegalOperationError extends Error {
  override name = "IllegalOperationError" as const;
  /** Where the channel or connection was when it closed (amqplib keeps a stack; warren, the reason). */
  stackAtStateChange: string | undefined;
  constructor(msg: string, stack?: string) {
    super(msg);
    this.stackAtStateChange = stack;
  }
}

/** An error with amqplib's fields: the close's reply code and the method that failed. */
export interface CloseError extends Error {
  code: number;
  classId: number;
  methodId: number;
}

/** Class and method id of each method the layer sends that the broker may refuse (AMQP 0-9-1). */
const METHOD_IDS: Record<string, readonly [number, number, string]> = {
  "channel.open": [20, 10, "ChannelOpen"],
  "exchange.declare": [40, 10, "ExchangeDeclare"],
  "exchange.delete": [40, 20, "ExchangeDelete"],
  "exchange.bind": [40, 30, "ExchangeBind"],
  "exchange.unbind": [40, 40, "ExchangeUnbind"],
  "queue.declare": [50, 10, "QueueDeclare"],
  "queue.bind": [50, 20, "QueueBind"],
  "queue.purge": [50, 30, "QueuePurge"],
  "queue.delete": [50, 40, "QueueDelete"],
  "queue.unbind": [50, 50, "QueueUnbind"],
  "basic.qos": [60, 10, "BasicQos"],
  "basic.consume": [60, 20, "BasicConsume"],
  "basic.cancel": [60, 30, "BasicCancel"],
  "basic.get": [60, 70, "BasicGet"],
  "basic.recover": [60, 110, "BasicRecover"],
  "confirm.select": [85, 10, "ConfirmSelect"],
};

/** `404 (NOT-FOUND) with message "NOT_FOUND - ..."`: amqplib's words for a close. */
function closeMessage(code: number, text: string): string {
  const name = Object.entries(ReplyCode)
    .find(([, v]) => v === code)?.[0]
    .replaceAll("_", "-");
  return `${code} (${name ?? "undefined"}) with message "${text}"`;
}

function withFields(message: string, e: { replyCode: number; classId: number; methodId: number }): CloseError {
  return Object.assign(new Error(message), { code: e.replyCode, classId: e.classId, methodId: e.methodId });
}

/** The error a channel emits when the broker closes it. */
export function channelClosed(e: ChannelClosedError): CloseError {
  return withFields(`Channel closed by server: ${closeMessage(e.replyCode, e.replyText)}`, e);
}

/** The error a connection emits when the broker closes it: amqplib gives it the reply code alone. */
export function connectionClosed(e: ConnectionClosedError): Error & { code: number } {
  return Object.assign(new Error(`Connection closed: ${closeMessage(e.replyCode, e.replyText)}`), {
    code: e.replyCode,
  });
}

/**
 * What an operation rejects with, from warren's error: the broker's refusal of this very method
 * ("Operation failed"), a close for another reason, or IllegalOperationError once closed.
 */
export function operationError(method: string, err: unknown, closedBefore: boolean): unknown {
  if (closedBefore) return new IllegalOperationError("Channel closed", reasonOf(err));
  if (err instanceof ChannelClosedError && err.initiatedBy === "server") {
    const ids = METHOD_IDS[method];
    if (ids !== undefined && err.classId === ids[0] && err.methodId === ids[1])
      return withFields(`Operation failed: ${ids[2]}; ${closeMessage(err.replyCode, err.replyText)}`, err);
    return channelClosed(err);
  }
  // The connection went (the broker closed it, the socket failed, the model was closed): amqplib
  // rejects every call still waiting on the channel with this, whatever the reason.
  if (err instanceof ConnectionClosedError) return new Error("Channel ended, no reply will be forthcoming");
  return err;
}

function reasonOf(err: unknown): string | undefined {
  return err instanceof Error ? `Stack capture: ${(err as AmqpError).message}` : undefined;
}

/** An "error" to its listeners; with none (amqplib would throw it into the event loop), a process warning. */
export function warnOrEmitError(emitter: NodeJS.EventEmitter, err: Error, what: string): void {
  if (emitter.listenerCount("error") > 0) safeEmit(emitter, "error", err);
  else process.emitWarning(`warren/amqplib: ${what} and no "error" listener: ${err.message}`);
}
