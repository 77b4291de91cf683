/**
 * amqplib's arguments in warren's terms, and warren's messages in amqplib's shape: option
 * shorthands (messageTtl, deadLetterExchange, alternateExchange, priority...) become the x-
 * arguments RabbitMQ reads, durable defaults to true as in amqplib, a publish always carries a
 * headers table (CC and BCC in it), a timestamp is seconds, and a message has every property
 * key, undefined when absent.
 */
import type {
  ExchangeDeclareOptions,
  FieldTable,
  Message as WarrenMessage,
  PublishOptions,
  QueueDeclareOptions,
  ReturnedMessage,
} from "../index.js";
import type { ConsumeMessage, GetMessage, Message, MessageProperties, Options } from "./types.js";

/** `arguments` with the shorthands that are set written in (amqplib leaves unset ones out). */
function withArguments(given: unknown, extra: Record<string, unknown>): FieldTable {
  const args: FieldTable = { ...(given as FieldTable | undefined) };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) args[k] = v as FieldTable[string];
  return args;
}

export function queueOptions(o: Options.AssertQueue = {}): QueueDeclareOptions {
  return {
    durable: o.durable ?? true,
    exclusive: !!o.exclusive,
    autoDelete: !!o.autoDelete,
    arguments: withArguments(o.arguments, {
      "x-expires": o.expires,
      "x-message-ttl": o.messageTtl,
      "x-dead-letter-exchange": o.deadLetterExchange,
      "x-dead-letter-routing-key": o.deadLetterRoutingKey,
      "x-max-length": o.maxLength,
      "x-max-priority": o.maxPriority,
      "x-overflow": o.overflow,
      "x-queue-mode": o.queueMode,
    }),
  };
}

export function exchangeOptions(o: Options.AssertExchange = {}): ExchangeDeclareOptions {
  return {
    durable: o.durable ?? true,
    internal: !!o.internal,
    autoDelete: !!o.autoDelete,
    arguments: withArguments(o.arguments, { "alternate-exchange": o.alternateExchange }),
  };
}

export function consumeArguments(o: Options.Consume = {}): FieldTable {
  return withArguments(o.arguments, { "x-priority": o.priority });
}

const list = (v: string | string[] | undefined) =>
  v === undefined ? undefined : Array.isArray(v) ? v.map(String) : [String(v)];

/** A publish with no options: amqplib sends an empty headers table; one object for all of them. */
const NO_HEADERS = Object.freeze({});
const PLAIN: PublishOptions = Object.freeze({ headers: NO_HEADERS, mandatory: false }) as PublishOptions;

/**
 * warren's options for an amqplib publish; a confirm channel's carry its `onConfirm`, in the
 * literal that makes the object (a spread of the frozen PLAIN makes a slow object to read).
 */
export function publishOptions(
  o: Options.Publish | undefined,
  onConfirm?: (err: Error | undefined) => void,
): PublishOptions {
  if (o === undefined) return onConfirm === undefined ? PLAIN : { headers: NO_HEADERS, mandatory: false, onConfirm };
  const headers = withArguments(o.headers, { CC: list(o.CC), BCC: list(o.BCC) });
  const deliveryMode =
    o.persistent !== undefined
      ? o.persistent
        ? 2
        : 1
      : typeof o.deliveryMode === "number"
        ? o.deliveryMode
        : o.deliveryMode
          ? 2
          : undefined;
  const p: PublishOptions =
    onConfirm === undefined ? { headers, mandatory: !!o.mandatory } : { headers, mandatory: !!o.mandatory, onConfirm };
  if (o.contentType !== undefined) p.contentType = o.contentType;
  if (o.contentEncoding !== undefined) p.contentEncoding = o.contentEncoding;
  if (deliveryMode !== undefined) p.deliveryMode = deliveryMode;
  if (o.priority !== undefined) p.priority = o.priority;
  if (o.correlationId !== undefined) p.correlationId = o.correlationId;
  if (o.replyTo !== undefined) p.replyTo = o.replyTo;
  if (o.expiration !== undefined) p.expiration = String(o.expiration);
  if (o.messageId !== undefined) p.messageId = o.messageId;
  if (o.timestamp !== undefined) p.timestamp = new Date(o.timestamp * 1000);
  if (o.type !== undefined) p.type = o.type;
  if (o.userId !== undefined) p.userId = o.userId;
  if (o.appId !== undefined) p.appId = o.appId;
  return p;
}

function properties(p: WarrenMessage["properties"]): MessageProperties {
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    headers: p.headers,
    deliveryMode: p.deliveryMode,
    priority: p.priority,
    correlationId: p.correlationId,
    replyTo: p.replyTo,
    expiration: p.expiration,
    messageId: p.messageId,
    timestamp: p.timestamp === undefined ? undefined : Math.floor(p.timestamp.getTime() / 1000),
    type: p.type,
    userId: p.userId,
    appId: p.appId,
    clusterId: p.clusterId,
  };
}

/**
 * A message as amqplib hands it out, which knows the warren delivery it stands for (so a settle
 * is checked as warren checks it); a class rather than a WeakMap beside a plain object, which
 * cost a map entry per delivery. Its shape is amqplib's: content, fields, properties.
 */
class Delivered {
  readonly #delivery: WarrenMessage;
  constructor(
    delivery: WarrenMessage,
    public content: Buffer,
    public fields: ConsumeMessage["fields"] | GetMessage["fields"],
    public properties: MessageProperties,
  ) {
    this.#delivery = delivery;
  }
  static of(msg: unknown): WarrenMessage | undefined {
    return msg instanceof Delivered ? msg.#delivery : undefined;
  }
}

/** The warren delivery behind a message this layer handed out (undefined for one it did not). */
export const deliveryOf = (msg: Message): WarrenMessage | undefined => Delivered.of(msg);

export function consumeMessage(m: WarrenMessage): ConsumeMessage {
  const f = m.fields;
  return new Delivered(
    m,
    m.body,
    {
      consumerTag: f.consumerTag ?? "",
      deliveryTag: f.deliveryTag,
      redelivered: f.redelivered,
      exchange: f.exchange,
      routingKey: f.routingKey,
    },
    properties(m.properties),
  ) as ConsumeMessage;
}

export function getMessage(m: WarrenMessage): GetMessage {
  const f = m.fields;
  return new Delivered(
    m,
    m.body,
    {
      deliveryTag: f.deliveryTag,
      redelivered: f.redelivered,
      exchange: f.exchange,
      routingKey: f.routingKey,
      messageCount: f.messageCount ?? 0,
    },
    properties(m.properties),
  ) as GetMessage;
}

export function returnedMessage(m: ReturnedMessage): Message {
  const { replyCode, replyText, exchange, routingKey } = m.fields;
  return {
    content: m.body,
    fields: { replyCode, replyText, exchange, routingKey } as unknown as Message["fields"],
    properties: properties(m.properties),
  };
}
