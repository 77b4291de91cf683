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
  /** Channel.nack of this message on the channel it came from. */
  nack(options?: { multiple?: boolean; requeue?: boolean }): AmqpError | undefined;
  /** Channel.reject of this message on the channel it came from. */
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
 * How many times a quorum queue has delivered this message before and had it returned
 * (nack or reject with requeue, a lost consumer): its `x-delivery-count` header, 0 when absent.
 * Compared against the queue's `x-delivery-limit`.
 */
export function deliveryCount(msg: Pick<Message, "properties">): number {
  const n = msg.properties.headers?.["x-delivery-count"];
  return typeof n === "number" ? n : typeof n === "bigint" ? Number(n) : 0;
}
