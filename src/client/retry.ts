/**
 * Retry after a delay, a number of attempts, then a parking queue: a topology every RabbitMQ
 * version can run (message TTL and dead-lettering), for the delayed redelivery that RabbitMQ
 * 4.3's quorum queues have built in (`delayedRetry`, x-delayed-retry-*) and older brokers do not
 * (the delayed-message-exchange plugin is archived, and does not run on 4.3).
 *
 *   queue --fails: basic.reject, no requeue--> queue.retry (x-message-ttl: delay)
 *     ^                                             |
 *     +------------- expired: dead-lettered --------+
 *   queue --fails the last attempt--> published to queue.parked (confirmed), then acked
 *
 * Attempts are counted by the broker, in the x-death header it writes at each dead-lettering
 * (the entry for `queue` with reason "rejected"): nothing is kept in the client, so every
 * consumer of the queue, and one started again, counts alike.
 */
import type { FieldTable } from "../protocol/table.js";
import type { Channel } from "./channel.js";
import type { Message } from "./message.js";
import { isTimeout } from "./wait.js";

/** Options of declareRetryTopology(). */
export interface RetryTopologyOptions {
  /** How long a failed message waits before it is delivered again, in ms. */
  delay: number;
  /** Deliveries a message gets in all (the first and the retries); failing the last one parks it. */
  attempts: number;
  /** The type of the three queues (default "quorum"; all are durable). */
  queueType?: "classic" | "quorum";
  /** Default `${queue}.retry`. */
  retryQueue?: string;
  /** Default `${queue}.parked`. */
  parkingQueue?: string;
  /** More arguments of the work queue (not the dead-letter ones, which this sets). */
  arguments?: FieldTable;
}

/** The topology declareRetryTopology() made: its queues, and what to do with a delivery that failed. */
export class RetryTopology {
  readonly retryQueue: string;
  readonly parkingQueue: string;
  readonly delay: number;
  readonly attempts: number;
  #parking: Promise<Channel> | undefined;

  /** @internal */
  constructor(
    private readonly channel: Channel,
    readonly queue: string,
    o: RetryTopologyOptions,
  ) {
    this.retryQueue = o.retryQueue ?? `${queue}.retry`;
    this.parkingQueue = o.parkingQueue ?? `${queue}.parked`;
    this.delay = o.delay;
    this.attempts = o.attempts;
  }

  /** Which attempt this delivery is: 1 for the first, n after n - 1 failures. */
  attempt(msg: Pick<Message, "properties">): number {
    const deaths = msg.properties.headers?.["x-death"];
    if (!Array.isArray(deaths)) return 1;
    const entry = deaths.find(
      (d) =>
        d !== null &&
        typeof d === "object" &&
        (d as FieldTable)["queue"] === this.queue &&
        (d as FieldTable)["reason"] === "rejected",
    ) as FieldTable | undefined;
    const count = entry?.["count"];
    return (typeof count === "number" ? count : typeof count === "bigint" ? Number(count) : 0) + 1;
  }

  /**
   * A delivery of `queue` failed: rejected to the retry queue, to come back after the delay; or,
   * on its last attempt, published to the parking queue and acked once the broker has confirmed
   * it (should that publish fail, it goes to the retry queue instead: never lost). Give it as
   * the consumer's `retry` option, with settle "auto", or call it from your own handler.
   */
  async failed(msg: Message): Promise<void> {
    if (this.attempt(msg) < this.attempts) {
      msg.reject({ requeue: false });
      return;
    }
    try {
      const parking = await (this.#parking ??= this.#openParking());
      await parking.publish("", this.parkingQueue, msg.body, msg.properties);
    } catch {
      this.#parking = undefined;
      msg.reject({ requeue: false });
      return;
    }
    msg.ack();
  }

  /** Close the channel parked messages are published on (the topology stays on the broker). */
  async close(): Promise<void> {
    const parking = this.#parking;
    this.#parking = undefined;
    if (parking !== undefined) await (await parking.catch(() => undefined))?.close();
  }

  async #openParking(): Promise<Channel> {
    const ch = await this.channel.connection.openChannel();
    await ch.confirmSelect();
    return ch;
  }
}

/**
 * Declare `queue` with a retry queue and a parking queue (see retry.ts): a delivery that fails
 * comes back after `delay` ms, at most `attempts` deliveries in all, then waits in the parking
 * queue for someone to look at it. Consume `queue` with `{ settle: "auto", retry }`.
 */
export async function declareRetryTopology(
  channel: Channel,
  queue: string,
  options: RetryTopologyOptions,
): Promise<RetryTopology> {
  if (queue === "")
    throw new TypeError("declareRetryTopology: the queue needs a name (the retry queue dead-letters back to it)");
  if (!isTimeout(options.delay))
    throw new RangeError(
      `declareRetryTopology: delay must be a number of ms from 1 to 2^31 - 1, got ${String(options.delay)}`,
    );
  if (!(Number.isSafeInteger(options.attempts) && options.attempts >= 1))
    throw new RangeError(`declareRetryTopology: attempts must be a positive integer, got ${String(options.attempts)}`);
  const topology = new RetryTopology(channel, queue, options);
  const queueType = options.queueType ?? "quorum";
  const back = (to: string): FieldTable => ({ "x-dead-letter-exchange": "", "x-dead-letter-routing-key": to });
  await channel.queueDeclare(topology.parkingQueue, { durable: true, queueType });
  await channel.queueDeclare(topology.retryQueue, {
    durable: true,
    queueType,
    arguments: { "x-message-ttl": options.delay, ...back(queue) },
  });
  await channel.queueDeclare(queue, {
    durable: true,
    queueType,
    arguments: { ...options.arguments, ...back(topology.retryQueue) },
  });
  return topology;
}
