/** What a consumer, a get or a return hands the user. */
import type { BasicProperties } from "../protocol/properties.js";
import type { AmqpError } from "./errors.js";

/** Where a delivered message came from. For a consumer delivery, consumerTag is set; for a get, messageCount. */
export interface DeliveryFields {
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
  /** The consumer it was delivered to (basic.deliver). */
  consumerTag?: string;
  /** Messages left in the queue after this one (basic.get-ok). */
  messageCount?: number;
}

/** A delivered message (a consumer's delivery, or basic.get's), which settles itself on the channel it came from. */
export interface Message {
  /** The body: a view of the received bytes, not a copy. */
  body: Buffer;
  properties: BasicProperties;
  fields: DeliveryFields;
  /** Channel.ack of this message on the channel it came from. */
  ack(options?: { multiple?: boolean }): AmqpError | undefined;
  /**
   * basic.nack of this message on the channel it came from: give it back (requeue, the default)
   * or drop it (dead-letter it). On RabbitMQ 4.3 and later a nack is a return, not a failure: a
   * quorum queue does not count it toward x-delivery-limit, so requeueing with nack can go on
   * forever. Before 4.3, nack and reject count alike.
   */
  nack(options?: { multiple?: boolean; requeue?: boolean }): AmqpError | undefined;
  /**
   * basic.reject of this message on the channel it came from: this message failed. Requeued (the
   * default) or dropped (dead-lettered); on every RabbitMQ version a quorum queue counts it toward
   * x-delivery-limit (deliveryCount), so a message that keeps failing is dead-lettered at the limit.
   */
  reject(options?: { requeue?: boolean }): AmqpError | undefined;
}

/** What a delivery settles itself through: the channel it came from (channel.ts). */
export interface Settler {
  ack(msg: Message, options?: { multiple?: boolean }): AmqpError | undefined;
  nack(msg: Message, options?: { multiple?: boolean; requeue?: boolean }): AmqpError | undefined;
  reject(msg: Message, options?: { requeue?: boolean }): AmqpError | undefined;
  /** Acked, nacked or rejected already, or covered by a multiple ack. */
  isSettled(msg: Message): boolean;
}

/** @internal A delivered message that knows its channel, and whether it was settled through it. */
export class Delivery implements Message {
  /** Acked, nacked or rejected (a second time would be 406 PRECONDITION_FAILED). */
  settled = false;
  constructor(
    readonly channel: Settler,
    public body: Buffer,
    public properties: BasicProperties,
    public fields: DeliveryFields,
  ) {}

  ack(options?: { multiple?: boolean }): AmqpError | undefined {
    return this.channel.ack(this, options);
  }
  nack(options?: { multiple?: boolean; requeue?: boolean }): AmqpError | undefined {
    return this.channel.nack(this, options);
  }
  reject(options?: { requeue?: boolean }): AmqpError | undefined {
    return this.channel.reject(this, options);
  }
}

/** A mandatory publish that could not be routed, handed back by the broker (basic.return). */
export interface ReturnedMessage {
  body: Buffer;
  properties: BasicProperties;
  fields: { replyCode: number; replyText: string; exchange: string; routingKey: string };
}

/**
 * How many failed deliveries of this message a quorum queue has counted: its `x-delivery-count`
 * header, 0 when absent. What the queue's `x-delivery-limit` is compared against (past it, the
 * message is dead-lettered or dropped). What counts as failed depends on the broker:
 * - RabbitMQ 4.3 and later: a basic.reject (requeue or not), and a consumer timeout. A
 *   basic.nack is a return, not a failure, and is not counted (nor a lost consumer or channel):
 *   see acquiredCount() for every hand-out.
 * - RabbitMQ 3.x and 4.0-4.2: every return, nack and reject alike (and a lost consumer).
 */
export function deliveryCount(msg: Pick<Message, "properties">): number {
  return countHeader(msg, "x-delivery-count") ?? 0;
}

/**
 * How many times a quorum queue handed this message out before this delivery, however each
 * ended (returned, rejected, its consumer lost): RabbitMQ 4.3's `x-acquired-count` header. On
 * brokers before 4.3, which do not send it, the `x-delivery-count` header, which counts the same
 * there (every return); 0 when neither is present (a first delivery, or a classic queue).
 */
export function acquiredCount(msg: Pick<Message, "properties">): number {
  return countHeader(msg, "x-acquired-count") ?? countHeader(msg, "x-delivery-count") ?? 0;
}

function countHeader(msg: Pick<Message, "properties">, name: string): number | undefined {
  const n = msg.properties.headers?.[name];
  return typeof n === "number" ? n : typeof n === "bigint" ? Number(n) : undefined;
}
