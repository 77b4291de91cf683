/**
 * What automatic recovery does to one channel (recovery.ts drives the connection's side): when
 * the connection is lost, suspend it -- drop what belonged to the dead channel, keep what will
 * be replayed; once a new socket is open, restore it -- channel.open with the same id, then its
 * prefetch, consumers (same tags, queues renamed if they were) and confirm mode, then the kept
 * publishes, then the calls that waited, in their order.
 *
 *   open -> recovering -> (channel.open-ok) restoring -> open
 */
import type { RecoverySettings } from "./channel-host.js";
import type { Unconfirmed } from "./confirms.js";
import { consumeMethod, type ConsumerTable } from "./consumer-table.js";
import type { DeliveryTags } from "./delivery-tags.js";
import type { AmqpError } from "./errors.js";
import type { Publishing } from "./publishing.js";
import type { RequestMethod } from "./sync-calls.js";
import { ChannelRecord, resumeArguments } from "./topology.js";
import { Waiters } from "./wait.js";

/** What a channel's recovery drives: its parts, and the channel's own state (channel.ts). */
export interface RecoveredChannel {
  readonly tags: DeliveryTags;
  readonly consumers: ConsumerTable;
  readonly publishing: Publishing;
  /** A call of recovery's own: it goes out while the channel is not yet open. */
  replay(method: RequestMethod): Promise<unknown>;
  /** The lost channel's state is dropped: a half-assembled message, the calls in flight (they reject with `reason`). */
  lose(reason: AmqpError): void;
  /** The channel's state moves on: "restoring" once the broker has opened it again, then "open". */
  enter(state: "recovering" | "restoring" | "open"): void;
}

export class ChannelRecovery {
  /** What this channel set up (prefetch, consumers), to set it up again. */
  readonly record: ChannelRecord;
  /** Why the connection was lost, while it is. */
  private lost: AmqpError | undefined;
  /** Calls and publishes made while recovering wait here for the channel to be back. */
  private readonly waiting = new Waiters();
  /** Unconfirmed publishes to send again on the new channel (republishUnconfirmed). */
  private kept: Unconfirmed[] = [];
  /** restore() in progress. */
  private running: Promise<void> | undefined;

  constructor(
    private readonly ch: RecoveredChannel,
    private readonly settings: RecoverySettings,
  ) {
    this.record = new ChannelRecord(settings.topology);
  }

  /** Why calls on the channel fail while it waits to be restored. */
  get reason(): AmqpError | undefined {
    return this.lost;
  }

  /** restore() while it runs (a close then waits for it, to close the channel on the broker). */
  get inProgress(): Promise<void> | undefined {
    return this.running;
  }

  /**
   * The connection was lost and will be recovered. The calls in flight or queued reject with
   * `reason`: the broker may or may not have acted on them. Unconfirmed publishes reject too, or
   * are kept (republishUnconfirmed). Consumers stay registered, to be started again; their
   * buffers let go of what the broker requeues.
   */
  suspend(reason: AmqpError): void {
    this.ch.enter("recovering");
    this.lost = reason;
    this.ch.tags.dropDeferred(); // the broker requeues every unacked delivery of the dead channel
    this.ch.lose(reason);
    this.kept.push(...this.ch.publishing.suspend(reason));
    this.ch.consumers.suspendAll();
  }

  restore(): Promise<void> {
    this.running = this.replayAll().finally(() => (this.running = undefined));
    return this.running;
  }

  private async replayAll(): Promise<void> {
    const { ch, record } = this;
    const qos = (q: { count: number; size: number }, global: boolean) =>
      ch.replay({ name: "basic.qos", prefetchSize: q.size, prefetchCount: q.count, global });
    await ch.replay({ name: "channel.open" });
    ch.tags.restart();
    ch.enter("restoring");
    if (record.shared) await qos(record.shared, true);
    // Per-consumer prefetch applies to consumers started after it: replay it consumer by consumer.
    let current = { count: 0, size: 0 };
    for (const [tag, c] of [...record.consumers]) {
      if (c.prefetch.count !== current.count || c.prefetch.size !== current.size)
        await qos((current = c.prefetch), false);
      c.queue = this.settings.topology.queueName(c.queue);
      await ch.replay(
        consumeMethod(c.queue, tag, { ...c.options, arguments: resumeArguments(c.options.arguments, c.stream) }),
      );
    }
    const perConsumer = record.perConsumer;
    if (perConsumer.count !== current.count || perConsumer.size !== current.size) await qos(perConsumer, false);
    if (ch.publishing.inConfirmMode) await ch.replay({ name: "confirm.select", noWait: false });
    ch.enter("open");
    this.lost = undefined;
    for (const u of this.kept.splice(0))
      u.republish!().then(
        () => u.resolve(),
        (e: unknown) => u.reject(e),
      );
    ch.publishing.resume();
    this.waiting.wake();
  }

  /** While recovering: run `then` once restore() is done (bounded by recovery.waitTimeout and `signal`), in the order of the calls. */
  afterRecovery<T>(what: string, signal: AbortSignal | undefined, then: () => Promise<T>): Promise<T> {
    return this.waiting.wait(
      `${what} (waiting for the connection to recover)`,
      { timeout: this.settings.waitTimeout, signal },
      then,
    );
  }

  /** The channel is gone: what waited for its recovery rejects with `reason`, and nothing is replayed. */
  fail(reason: AmqpError): void {
    this.record.clear();
    for (const u of this.kept.splice(0)) u.reject(reason);
    this.waiting.fail(reason);
  }
}
