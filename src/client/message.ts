/** What a consumer, a get or a return hands the user. */
import type { BasicProperties } from "../protocol/properties.js";

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

export interface Message {
  /** The body: a view of the received bytes, not a copy. */
  body: Buffer;
  properties: BasicProperties;
  fields: DeliveryFields;
}

/** A mandatory publish that could not be routed, handed back by the broker (basic.return). */
export interface ReturnedMessage {
  body: Buffer;
  properties: BasicProperties;
  fields: { replyCode: number; replyText: string; exchange: string; routingKey: string };
}
