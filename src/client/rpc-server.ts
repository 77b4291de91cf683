/**
 * The server side of request/reply (RabbitMQ "Direct Reply-to", tutorial 6): consume a queue of
 * requests, run a handler per request, publish what it returns to the request's reply_to with
 * its correlation_id, and ack the request only once the broker has confirmed the reply (the
 * channel is put in confirm mode), so a request whose reply was lost is delivered again.
 *
 * A handler that throws answers with an error reply: an empty body and the header
 * `x-warren-rpc-error` carrying the message, which RpcClient (rpc.ts) turns into an RpcError.
 * A request without reply_to cannot be answered: it is rejected without requeue (dead-lettered
 * when its queue has a dead-letter exchange) and reported as a consumerError.
 */
import type { BasicProperties } from "../protocol/properties.js";
import type { Channel } from "./channel.js";
import type { Consumer } from "./consumer.js";
import { AmqpError } from "./errors.js";
import type { Message } from "./message.js";

/** The header of an error reply. */
export const RPC_ERROR_HEADER = "x-warren-rpc-error";

/** What a handler answers: a body, or a body with reply properties. */
export type RpcReply = string | Uint8Array | { body: string | Uint8Array; properties?: BasicProperties };

/** Options of createRpcServer(). */
export interface RpcServerOptions {
  /** How many requests are handled at once (default 1; see ConsumeOptions.concurrency). */
  concurrency?: number;
}

/** What createRpcServer() returns: the server, to close. */
export interface RpcServer {
  readonly consumerTag: string;
  /** Stop taking requests; wait for those being handled to be answered and acked. */
  close(): Promise<void>;
}

/** Serve `queue` on `channel` (which is put in confirm mode). */
export async function createRpcServer(
  channel: Channel,
  queue: string,
  handler: (request: Message) => RpcReply | Promise<RpcReply>,
  options: RpcServerOptions = {},
): Promise<RpcServer> {
  await channel.confirmSelect();
  const consumer: Consumer = await channel.consume(
    queue,
    async (request) => {
      const { replyTo, correlationId } = request.properties;
      if (replyTo === undefined || replyTo === "") {
        channel.reject(request, { requeue: false });
        throw new AmqpError(`RPC request ${request.fields.deliveryTag} on ${queue} has no reply_to: rejected`);
      }
      let reply: RpcReply;
      try {
        reply = await handler(request);
      } catch (e) {
        reply = {
          body: "",
          properties: { headers: { [RPC_ERROR_HEADER]: e instanceof Error ? e.message : String(e) } },
        };
      }
      const { body, properties } =
        typeof reply === "string" || reply instanceof Uint8Array ? { body: reply, properties: {} } : reply;
      await channel.publish(
        "",
        replyTo,
        body,
        correlationId === undefined ? (properties ?? {}) : { ...properties, correlationId },
      );
      channel.ack(request);
    },
    options.concurrency === undefined ? {} : { concurrency: options.concurrency },
  );
  return {
    get consumerTag() {
      return consumer.consumerTag;
    },
    close: () => consumer.cancel({ drain: true }),
  };
}
