/**
 * Request/reply over RabbitMQ's direct reply-to (RabbitMQ "Direct Reply-to"): the caller
 * consumes the pseudo-queue amq.rabbitmq.reply-to in no-ack mode and publishes requests with
 * reply_to set to it; replies come straight back on this channel, with no queue declared.
 * Requests are matched to replies by correlation id.
 */
import type { Channel, PublishOptions } from "./channel.js";
import { AbortError, AmqpError, RpcError } from "./errors.js";
import { badTimeout, bounded, isTimeout } from "./wait.js";
import type { Message } from "./message.js";
import { RPC_ERROR_HEADER } from "./rpc-server.js";

const REPLY_TO = "amq.rabbitmq.reply-to";

/** Options of createRpcClient(). */
export interface RpcClientOptions {
  /** Default time limit for a call in ms (default 30000). */
  timeout?: number;
}
/** Options of one RPC call: the request's properties, and how long to wait for the reply. */
export interface RpcCallOptions extends PublishOptions {
  timeout?: number;
  signal?: AbortSignal;
}

interface Pending {
  resolve: (m: Message) => void;
  reject: (e: unknown) => void;
}

/** Request/reply over RabbitMQ's direct reply-to: call() publishes a request and resolves with its reply. Create with createRpcClient(). */
export class RpcClient {
  private readonly channel: Channel;
  private readonly timeout: number;
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private readonly prefix = `${process.pid.toString(36)}.${Date.now().toString(36)}.`;
  private consumerTag = "";

  /** @internal use createRpcClient() */
  constructor(channel: Channel, options: RpcClientOptions) {
    this.channel = channel;
    this.timeout = options.timeout ?? 30000;
    if (!isTimeout(this.timeout)) throw badTimeout("createRpcClient", this.timeout);
    // A close the user asked for emits no error, but the calls still failed: give them the typed close reason.
    channel.once("close", (err) => {
      channel.connection.off("disconnect", this.onDisconnect);
      this.failAll(err ?? channel.reason ?? new AmqpError("the RPC client's channel was closed"));
    });
    // A recovering connection was lost: replies to the calls in flight were bound for the dead
    // channel's reply-to and can never come, so the calls fail now with the loss reason.
    channel.connection.on("disconnect", this.onDisconnect);
  }

  private readonly onDisconnect = (err: AmqpError): void => this.failAll(err);

  /** @internal */
  async start(): Promise<void> {
    const c = await this.channel.consume(REPLY_TO, (msg) => this.onReply(msg), { noAck: true });
    this.consumerTag = c.consumerTag;
  }

  /** Takes a call out of `pending`: whichever of reply and failed publish comes first answers it. */
  private take(correlationId: string): Pending | undefined {
    const p = this.pending.get(correlationId);
    this.pending.delete(correlationId);
    return p;
  }

  private onReply(msg: Message): void {
    const id = msg.properties.correlationId;
    // No id, or a reply after its call timed out or was aborted: nobody waits for it.
    if (id === undefined) return;
    const failed = msg.properties.headers?.[RPC_ERROR_HEADER];
    if (failed === undefined) this.take(id)?.resolve(msg);
    else
      this.take(id)?.reject(
        new RpcError(`RPC call failed on the server: ${typeof failed === "string" ? failed : String(failed)}`),
      );
  }

  /** Publish a request and wait for its reply. */
  call(
    exchange: string,
    routingKey: string,
    body: string | Uint8Array,
    options: RpcCallOptions = {},
  ): Promise<Message> {
    const { timeout = this.timeout, signal, ...props } = options;
    if (signal?.aborted) return Promise.reject(new AbortError("RPC call aborted"));
    if (!isTimeout(timeout)) return Promise.reject(badTimeout("RPC call", timeout));
    const correlationId = props.correlationId ?? this.prefix + (this.nextId++).toString(36);
    // Replies are matched by correlation id alone: a second call under a pending id would take the first one's reply.
    if (this.pending.has(correlationId))
      return Promise.reject(
        new TypeError(`RPC call: correlation id ${JSON.stringify(correlationId)} is already waiting for a reply`),
      );
    let entry: Pending | undefined;
    const reply = new Promise<Message>((resolve, reject) =>
      this.pending.set(correlationId, (entry = { resolve, reject })),
    );
    this.channel
      .publish(exchange, routingKey, body, { ...props, correlationId, replyTo: REPLY_TO })
      .catch((e: unknown) => this.take(correlationId)?.reject(e));
    // A timeout or abort ends the call: a reply after it finds nobody waiting.
    return bounded(reply, { timeout, signal }, `RPC ${routingKey} (correlation id ${correlationId})`).finally(() => {
      if (this.pending.get(correlationId) === entry) this.pending.delete(correlationId);
    });
  }

  private failAll(err: unknown): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  /** Stop consuming replies; pending calls reject. */
  async close(): Promise<void> {
    this.channel.connection.off("disconnect", this.onDisconnect);
    this.failAll(new AmqpError("the RPC client was closed"));
    if (this.consumerTag && !this.channel.closed) await this.channel.cancel(this.consumerTag);
  }
}

/** An RPC client on this channel (it consumes the channel's direct reply-to). */
export async function createRpcClient(channel: Channel, options: RpcClientOptions = {}): Promise<RpcClient> {
  const rpc = new RpcClient(channel, options);
  await rpc.start();
  return rpc;
}
