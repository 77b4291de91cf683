/**
 * A channel's delivery tags and how deliveries are settled (ack, nack, reject).
 *
 * Delivery tags are per channel and sequential from 1 (spec basic.deliver, "delivery-tag").
 * `settledThrough` is the highest tag T such that every tag <= T is settled: acked, rejected,
 * or delivered in no-ack mode; tags settled above it, out of order, wait in `ahead` until it
 * reaches them, so that what is settled is known exactly. While the user acks in that order, the acks are deferred as one and
 * written as a single basic.ack(multiple) at the next flush (outbound.ts): the broker's state
 * afterwards is exactly that of the individual acks, but it parses one frame instead of
 * hundreds. Any other frame on the channel writes the deferred ack first (`send`), so order is kept.
 *
 * After a recovery the broker numbers deliveries from 1 again on the new channel: tags are
 * shifted by `offset` (the last tag before the loss) both ways, and a settle of a delivery from
 * before the loss is not sent (the broker has requeued that message already).
 */
import type { Method, MethodOf } from "../protocol/methods.js";
import { AmqpError } from "./errors.js";
import type { Message } from "./message.js";

/** What the writer asks of a channel that holds acks (outbound.ts). */
export interface DeferredAcks {
  /** Fewer acks are deferred than the batch: they may wait a little longer for more. */
  readonly belowBatch: boolean;
  /** Encode the deferred ack, if any (the writer flushes it). */
  writeDeferred(): void;
}

/** What settling needs of the writer. */
export interface AckWriter {
  /** Encode a method and schedule its flush. */
  method(channel: number, m: Method): void;
  /** Encode a method; the caller flushes. */
  encodeMethod(channel: number, m: Method): void;
  /** `source` defers acks now: ask it for them at the next flush. */
  deferAcks(source: DeferredAcks): void;
  /** Flush at the end of this turn. */
  scheduleFlush(): void;
}

type Settle = MethodOf<"basic.ack"> | MethodOf<"basic.nack"> | MethodOf<"basic.reject">;

export class DeliveryTags implements DeferredAcks {
  private settledThrough = 0;
  /** Tags settled out of order, above settledThrough + 1 (at most the prefetch window's). */
  private readonly ahead = new Set<number>();
  private last = 0;
  /** The highest tag of the acks deferred now (0: none), and the first. */
  private deferredTo = 0;
  private deferredFrom = 0;
  /** How many acks may be deferred across socket reads: a quarter of the prefetch. */
  private batch = 1;
  private offset = 0;
  /** Deliveries settled by basic.ack, basic.nack and basic.reject so far (stats.ts; a multiple settle counts each it covers). */
  acked = 0;
  nacked = 0;
  rejected = 0;

  constructor(
    private readonly channel: number,
    private readonly out: AckWriter,
  ) {}

  /** A delivery (or get-ok) arrived with the broker's tag: returns the tag the user sees. */
  delivered(wireTag: number, noAck: boolean): number {
    const tag = this.offset === 0 ? wireTag : wireTag + this.offset;
    this.last = tag;
    if (noAck) this.mark(tag);
    return tag;
  }

  /** Whether delivery `tag` is settled (not one from before a recovery: settle() says why those are refused). */
  settled(tag: number): boolean {
    return (tag <= this.settledThrough || (this.ahead.size > 0 && this.ahead.has(tag))) && tag > this.offset;
  }

  /**
   * `tag` is settled: the settled prefix grows, or it waits in `ahead` until the prefix reaches
   * it. Returns 1, or 0 when it was settled already.
   */
  private mark(tag: number): number {
    if (tag !== this.settledThrough + 1) {
      if (tag <= this.settledThrough || this.ahead.has(tag)) return 0;
      this.ahead.add(tag);
      return 1;
    }
    this.settledThrough = tag;
    if (this.ahead.size > 0) while (this.ahead.delete(this.settledThrough + 1)) this.settledThrough++;
    return 1;
  }

  /** Every tag up to `tag` is settled (a multiple ack or nack). Returns how many were not before. */
  private markThrough(tag: number): number {
    if (tag <= this.settledThrough) return 0;
    let count = tag - this.settledThrough;
    this.settledThrough = tag;
    for (const t of this.ahead) {
      if (t > tag) continue;
      this.ahead.delete(t);
      count--;
    }
    while (this.ahead.delete(this.settledThrough + 1)) this.settledThrough++;
    return count;
  }

  /** basic.ack of `tag`: deferred when it is the next in order, else sent at once. */
  ack(tag: number, multiple: boolean): AmqpError | undefined {
    if (multiple || tag !== this.settledThrough + 1 || !Number.isSafeInteger(tag))
      return this.settle({ name: "basic.ack", deliveryTag: tag, multiple });
    this.mark(tag);
    this.acked++;
    if (this.deferredTo === 0) {
      this.deferredFrom = tag;
      this.out.deferAcks(this);
    } else if (tag - this.deferredFrom + 1 >= this.batch) this.out.scheduleFlush();
    // Held as one ack multiple of this tag (RabbitMQ refuses a multiple ack of a tag no longer
    // outstanding with 406, so not of the tags settled ahead of it, which the prefix now covers).
    this.deferredTo = tag;
    return undefined;
  }

  /** Send an ack, nack or reject now; an error (never thrown) when it cannot be sent. */
  settle(m: Settle): AmqpError | undefined {
    if (Number.isNaN(m.deliveryTag)) return new AmqpError(`${m.name}: expected a Message or a delivery tag`);
    if (this.offset !== 0 && m.deliveryTag <= this.offset)
      return new AmqpError(
        `${m.name} of delivery ${m.deliveryTag}, from before the connection was recovered, not sent: the broker has requeued that message`,
      );
    try {
      this.send(this.offset === 0 ? m : { ...m, deliveryTag: m.deliveryTag - this.offset });
    } catch (e) {
      return new AmqpError(`invalid ${m.name}: ${(e as Error).message}`, { cause: e });
    }
    const count = m.name !== "basic.reject" && m.multiple ? this.markThrough(m.deliveryTag) : this.mark(m.deliveryTag);
    if (m.name === "basic.ack") this.acked += count;
    else if (m.name === "basic.nack") this.nacked += count;
    else this.rejected += count;
    return undefined;
  }

  /**
   * Ack or nack every delivery outstanding (spec basic.ack: delivery tag 0 with multiple set
   * means all of them), however they were settled ahead. Counted as the deliveries it covers.
   */
  settleAll(m: { name: "basic.ack" } | { name: "basic.nack"; requeue: boolean }): void {
    this.send(
      m.name === "basic.ack"
        ? { name: m.name, deliveryTag: 0, multiple: true }
        : { ...m, deliveryTag: 0, multiple: true },
    );
    const count = this.markThrough(this.last);
    if (m.name === "basic.ack") this.acked += count;
    else this.nacked += count;
  }

  /**
   * basic.nack with requeue of these deliveries, which no one will process. The run of them that
   * continues the settled prefix goes as one nack multiple, the rest one nack each: RabbitMQ 4.3
   * was seen to drop the returns of a quorum queue still pipelined when the channel or connection
   * closes right after (they were then counted as failed deliveries), and one frame is one command.
   */
  giveBack(tags: readonly number[]): void {
    const sorted = [...tags].sort((a, b) => a - b);
    let through = this.settledThrough;
    let i = 0;
    for (; i < sorted.length; i++) {
      let next = through + 1;
      while (this.ahead.size > 0 && this.ahead.has(next)) next++;
      if (sorted[i] !== next) break;
      through = next;
    }
    if (i > 1) this.settle({ name: "basic.nack", deliveryTag: through, multiple: true, requeue: true });
    for (const tag of sorted.slice(i > 1 ? i : 0))
      this.settle({ name: "basic.nack", deliveryTag: tag, multiple: false, requeue: true });
  }

  /** Every frame of the channel goes out through here, after the acks it defers. */
  send(m: Method): void {
    if (this.deferredTo !== 0) this.writeDeferred();
    this.out.method(this.channel, m);
  }

  get deferring(): boolean {
    return this.deferredTo !== 0;
  }

  get belowBatch(): boolean {
    return this.deferredTo !== 0 && this.deferredTo - this.deferredFrom + 1 < this.batch;
  }

  writeDeferred(): void {
    const tag = this.deferredTo;
    if (tag === 0) return;
    this.deferredTo = 0;
    this.out.encodeMethod(this.channel, { name: "basic.ack", deliveryTag: tag - this.offset, multiple: true });
  }

  /** The channel is gone (closed or lost): deferred acks are moot, the broker requeues. */
  dropDeferred(): void {
    this.deferredTo = 0;
  }

  /** basic.qos: defer at most a quarter of the prefetch, so the broker's window stays three-quarters open. */
  prefetch(count: number): void {
    this.batch = count >= 8 ? count >> 2 : 1;
  }

  /** basic.recover-ok: everything outstanding is redelivered under new tags; the old ones are settled. */
  redelivered(): void {
    this.settledThrough = this.last;
    this.ahead.clear();
  }

  /** Recovery opened the channel again: new tags continue after the last old one. */
  restart(): void {
    this.offset = this.last;
    this.settledThrough = this.last;
    this.ahead.clear();
  }
}

/** The delivery tag of a message, or NaN for something that is neither (settle() reports it, never throws). */
export function tagOf(msg: Message | number): number {
  if (typeof msg === "number") return msg;
  const tag = (msg as Partial<Message> | null | undefined)?.fields?.deliveryTag;
  return typeof tag === "number" ? tag : NaN;
}
