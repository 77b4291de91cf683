/**
 * Counters for operating warren: what went out, what came in, how each settled. Cumulative and
 * cheap: plain fields incremented where the event happens (a channel's publish and delivery
 * paths, its confirm window, its delivery tags, the socket's reads and writes), read only when
 * someone asks for a snapshot (`conn.stats()`, `ch.stats()`, `consumer.stats()`).
 */

/** A channel's publishes: each counted once, however it ends. */
export interface PublishStats {
  /** basic.publish frames written (a publish sent again by republishUnconfirmed counts again). */
  sent: number;
  /** Acked by the broker (confirm mode). */
  confirmed: number;
  /** Nacked by the broker (confirm mode). */
  nacked: number;
  /** Handed back by the broker (basic.return: a mandatory publish no queue took). */
  returned: number;
  /** Gave up waiting (for room in the confirm window, or for a recovery) before being sent. */
  timedOut: number;
  /** Sent in confirm mode and not yet acked or nacked (now, not cumulative). */
  unconfirmed: number;
}

/** A channel's deliveries (basic.deliver and basic.get-ok). */
export interface DeliveryStats {
  received: number;
  /** Of those, marked redelivered by the broker. */
  redelivered: number;
  /** Settled by basic.ack (a multiple ack counts each delivery it covers). */
  acked: number;
  /** Settled by basic.nack (hand-backs of deliveries no handler took included). */
  nacked: number;
  /** Settled by basic.reject (failed handlers with settle "auto" included). */
  rejected: number;
  /** Waiting for a handler or an iterator's next step (now). */
  buffered: number;
  /** Handlers running (now). */
  handlersRunning: number;
}

/** A channel's figures (`ch.stats()`): its publishes and its deliveries. */
export interface ChannelStats {
  publishes: PublishStats;
  deliveries: DeliveryStats;
}

/** A connection's figures (`conn.stats()`): its channels' (closed ones included), and its own. */
export interface ConnectionStats extends ChannelStats {
  /** Bytes read from and written to the socket (every socket, across recoveries). */
  bytes: { in: number; out: number };
  /** Recoveries completed, the time they took (from the loss to the channels restored), and the last one's. */
  recoveries: { count: number; totalMs: number; lastMs: number };
  /** connection.blocked periods (resource alarms): how many, their total time (ms, the current one included), and whether blocked now. */
  blocked: { count: number; totalMs: number; now: boolean };
  /** Channels open now. */
  channels: number;
}

/** One consumer's figures (callback consumers: `consumer.stats()`). */
export interface ConsumerStats {
  /** Deliveries it was given (across resubscribes and recoveries). */
  delivered: number;
  buffered: number;
  handlersRunning: number;
  /** paused with pause() (and not resumed). */
  paused: boolean;
}

/** The counters a channel keeps itself (its confirm window and delivery tags keep the rest). */
export class Counters {
  sent = 0;
  returned = 0;
  timedOut = 0;
  received = 0;
  redelivered = 0;

  /** A basic.deliver or basic.get-ok came. */
  delivered(redelivered: boolean): void {
    this.received++;
    if (redelivered) this.redelivered++;
  }
}

/** Empty ChannelStats, to add into. */
export function emptyChannelStats(): ChannelStats {
  return {
    publishes: { sent: 0, confirmed: 0, nacked: 0, returned: 0, timedOut: 0, unconfirmed: 0 },
    deliveries: { received: 0, redelivered: 0, acked: 0, nacked: 0, rejected: 0, buffered: 0, handlersRunning: 0 },
  };
}

/** The counts that only grow, and the figures of now (which a closed channel no longer has), by group. */
const CUMULATIVE = {
  publishes: ["sent", "confirmed", "nacked", "returned", "timedOut"],
  deliveries: ["received", "redelivered", "acked", "nacked", "rejected"],
} as const;
const NOW = { publishes: ["unconfirmed"], deliveries: ["buffered", "handlersRunning"] } as const;

function addFields<T extends Record<K, number>, K extends keyof T>(into: T, from: T, keys: readonly K[]): void {
  for (const k of keys) (into[k] as number) += from[k];
}

/** Adds `from` into `into`: every count; the figures of now too unless `cumulativeOnly` (a channel that closed). */
export function addChannelStats(into: ChannelStats, from: ChannelStats, cumulativeOnly = false): ChannelStats {
  addFields(into.publishes, from.publishes, CUMULATIVE.publishes);
  addFields(into.deliveries, from.deliveries, CUMULATIVE.deliveries);
  if (!cumulativeOnly) {
    addFields(into.publishes, from.publishes, NOW.publishes);
    addFields(into.deliveries, from.deliveries, NOW.deliveries);
  }
  return into;
}

/**
 * What a connection counts beyond its open channels: the counts of those that closed, its
 * recoveries (from the loss to the channels restored) and its blocked periods.
 */
export class ConnectionCounters {
  private readonly retired = emptyChannelStats();
  private readonly recoveries = { count: 0, totalMs: 0, lastMs: 0 };
  private blockedCount = 0;
  private blockedMs = 0;
  /** When the current blocked period began (undefined: not blocked). */
  private blockedAt: number | undefined;
  private lostAt = 0;

  /** A channel closed: its counts stay in the connection's. */
  retire(channel: ChannelStats): void {
    addChannelStats(this.retired, channel, true);
  }

  /** The connection was lost; recovery begins. */
  lost(): void {
    this.lostAt = performance.now();
  }

  /** Recovery has restored the channels. */
  restored(): void {
    const took = performance.now() - this.lostAt;
    this.recoveries.count++;
    this.recoveries.totalMs += took;
    this.recoveries.lastMs = took;
  }

  /** connection.blocked / unblocked (or the connection ended while blocked). */
  blocked(now: boolean): void {
    if (now && this.blockedAt === undefined) {
      this.blockedAt = performance.now();
      this.blockedCount++;
    } else if (!now && this.blockedAt !== undefined) {
      this.blockedMs += performance.now() - this.blockedAt;
      this.blockedAt = undefined;
    }
  }

  /** The connection's figures: these, plus its open channels' and its sockets' bytes. */
  snapshot(open: readonly ChannelStats[], bytes: { in: number; out: number }): ConnectionStats {
    const sum = addChannelStats(emptyChannelStats(), this.retired);
    for (const ch of open) addChannelStats(sum, ch);
    const current = this.blockedAt === undefined ? 0 : performance.now() - this.blockedAt;
    return {
      ...sum,
      bytes,
      recoveries: { ...this.recoveries },
      blocked: { count: this.blockedCount, totalMs: this.blockedMs + current, now: this.blockedAt !== undefined },
      channels: open.length,
    };
  }
}
