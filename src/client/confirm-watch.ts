/**
 * The confirm watch (the `confirmTimeout` connect option): publishes waiting for their confirm
 * while no confirm at all comes on their channel for `confirmTimeout` ms means the broker has
 * stopped confirming on this connection, and the connection is treated as lost, as after missed
 * heartbeats: with recovery it reconnects (to another host first) and republishes or rejects what
 * waited; without, every waiting publish rejects with the ConfirmTimeoutError.
 *
 * Heartbeats cannot see this: the node answers, only its queues do not. RabbitMQ 4.3 does it to a
 * publisher whose node was cut off from its quorum queues' majority: the publishes it accepted
 * meanwhile are never confirmed, not even once the partition heals, until the connection closes
 * (the soak, soak/run.ts, saw it). While the broker blocks the connection (a resource alarm) the
 * watch waits: no confirm is due then.
 *
 * It samples, so a publish costs nothing here: every quarter of the timeout, each channel's
 * count of confirms so far. Five samples in a row with publishes waiting and the count unchanged
 * (at least the timeout, at most a quarter more) are a stall.
 */

/** A channel's publishes, as stats() counts them. */
export interface ConfirmProgress {
  /** Publishes the broker acked or nacked so far. */
  settled: number;
  /** Publishes waiting for their confirm now. */
  waiting: number;
}

export interface ConfirmWatchHost {
  /** Each open channel's progress, by channel id. */
  progress(): Iterable<[number, ConfirmProgress]>;
  /** The broker has blocked the connection (connection.blocked). */
  blocked(): boolean;
  /** No confirm on `channel` for at least the timeout while publishes waited. */
  stalled(channel: number, waiting: number): void;
}

/** Samples in a row without progress that make a stall: the first may come just after a publish. */
const STALL_SAMPLES = 5;

export class ConfirmWatch {
  private timer: NodeJS.Timeout | undefined;
  /** Per channel id: the settled count last sampled, and for how many samples in a row it stood. */
  private readonly seen = new Map<number, { settled: number; still: number }>();

  constructor(
    private readonly timeoutMs: number,
    private readonly host: ConfirmWatchHost,
  ) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.sample(), this.timeoutMs / (STALL_SAMPLES - 1));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.seen.clear();
  }

  private sample(): void {
    const blocked = this.host.blocked();
    const open = new Set<number>();
    for (const [id, { settled, waiting }] of this.host.progress()) {
      open.add(id);
      const s = this.seen.get(id);
      if (blocked || waiting === 0 || s === undefined || s.settled !== settled) {
        this.seen.set(id, { settled, still: 0 });
      } else if (++s.still >= STALL_SAMPLES) {
        this.stop();
        return this.host.stalled(id, waiting);
      }
    }
    for (const id of this.seen.keys()) if (!open.has(id)) this.seen.delete(id);
  }
}
