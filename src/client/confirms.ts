/**
 * A channel's confirm window (RabbitMQ "Publisher Confirms"): once confirm.select is written,
 * the broker numbers the publishes that follow it on the wire from 1, and acks or nacks each
 * (or, with multiple, every one up to a number). Each publish waits here until its number is
 * confirmed.
 *
 * A mandatory publish the broker cannot route is handed back (basic.return) before its ack;
 * RabbitMQ numbers neither in the return, so it is matched to the oldest unconfirmed mandatory
 * publish with the same exchange, routing key and body, which then rejects with ReturnedError
 * on its ack instead of resolving.
 *
 * An entry confirmed out of order (a single ack past the oldest) becomes a hole, and the holes
 * at the head are taken off as the oldest is confirmed: a confirm costs what it confirms.
 */
import { AmqpError, NackError, ReturnedError } from "./errors.js";
import type { ReturnedMessage } from "./message.js";
import { Queue } from "./queue.js";
import { RESOLVED, Waiters, type Bounds, bounded } from "./wait.js";

export interface Unconfirmed {
  resolve: () => void;
  reject: (e: unknown) => void;
  /** With recovery.republishUnconfirmed: what to publish again if the connection is lost first. */
  republish?: (() => Promise<void>) | undefined;
  /** A mandatory publish: what a basic.return is matched against. */
  mandatory?: Published | undefined;
  /** The broker returned it: its ack rejects with this. */
  returned?: ReturnedError;
}

/** Where a mandatory publish went, and what. */
export interface Published {
  exchange: string;
  routingKey: string;
  body: Uint8Array;
}

/**
 * A plain publish (no republish, not mandatory) is kept as its promise's resolve function alone,
 * and fails by being resolved with a rejected promise (settle). What a waiting publish holds is
 * then its promise, that function and their shared context: a window of thousands is a third
 * smaller for the collector to copy than with a record and the reject function beside it.
 */
type Resolve = (failure?: PromiseLike<never>) => void;

/** A publish waiting for its confirm. */
export type Entry = Unconfirmed | Resolve;

/** Settle a waiting publish: resolved, or rejected with `err`. */
export function settle(e: Entry, err?: AmqpError | Error): void {
  if (typeof e === "function") e(err === undefined ? undefined : Promise.reject(err));
  else if (err === undefined) e.resolve();
  else e.reject(err);
}

/**
 * A publish whose outcome goes to the caller's `onConfirm` (PublishOptions) instead of a promise:
 * what waits is this and the caller's function. A pipeline of thousands then holds no promise
 * per publish for the collector to copy.
 */
export class Notify implements Unconfirmed {
  returned?: ReturnedError;
  constructor(
    private readonly onConfirm: (err: Error | undefined) => void,
    readonly republish: (() => Promise<void>) | undefined,
    readonly mandatory: Published | undefined,
  ) {}

  resolve(): void {
    notify(this.onConfirm, undefined);
  }

  reject(e: unknown): void {
    notify(this.onConfirm, e);
  }
}

/**
 * Hand a publish's outcome to its onConfirm: undefined for its ack, else the error. What the
 * callback throws is the caller's bug, not the channel's: a process warning, and the window goes on.
 */
export function notify(onConfirm: (err: Error | undefined) => void, failure: unknown): void {
  try {
    onConfirm(failure === undefined || failure instanceof Error ? failure : new AmqpError(String(failure)));
  } catch (e) {
    process.emitWarning(
      `warren: an onConfirm callback threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
  }
}

export class ConfirmWindow {
  /** Unconfirmed publishes by sequence number from `base`; a hole (undefined) is confirmed. */
  private readonly list = new Queue<Entry | undefined>();
  /** Sequence number of the oldest entry. */
  private base = 1;
  /** Publishes waiting for their confirm. */
  count = 0;
  /** confirmSelect's maxUnconfirmed. */
  limit = Infinity;
  /** Publishes the broker acked, and nacked, so far (stats.ts). */
  confirmed = 0;
  nacked = 0;
  /** Publishes waiting for room below `limit`, in order. */
  private readonly room = new Waiters();
  /**
   * A batch (publish-batch.ts) that ran out of room part-way: it goes on before anyone waiting
   * in `room`, whose publishes were all made after its. At most one: another batch gets to
   * write only once this one has gone on, and runs out of room only after it is done. When the
   * window is emptied (take: a recovery, or the channel failing) it goes on too, and finds the
   * channel recovering or closed, as a woken publish does.
   */
  private paused: (() => void) | undefined;
  /** waitAll() callers, woken when nothing is left unconfirmed. */
  private readonly allConfirmed = new Waiters();

  /** The next publish on the wire: resolves on its ack, rejects with NackError on its nack. */
  add(republish?: () => Promise<void>, mandatory?: Published): Promise<void> {
    if (republish || mandatory)
      return new Promise<void>((resolve, reject) => this.track({ resolve, reject, republish, mandatory }));
    return new Promise<void>((resolve) => this.track(resolve));
  }

  /** The next publish on the wire, settled through `u` (a message of a batch: publish-batch.ts). */
  track(u: Entry): void {
    this.count++;
    this.list.push(u);
  }

  /** basic.return: the oldest unconfirmed mandatory publish of this message will be rejected on its ack. */
  returned(fields: ReturnedMessage["fields"], body: Buffer): void {
    const { exchange, routingKey, replyCode, replyText } = fields;
    for (const u of this.list) {
      if (typeof u !== "object") continue;
      const p = u.mandatory;
      if (
        p === undefined ||
        u.returned !== undefined ||
        p.exchange !== exchange ||
        p.routingKey !== routingKey ||
        !body.equals(p.body)
      )
        continue;
      u.returned = new ReturnedError(replyCode, replyText, exchange, routingKey);
      return;
    }
  }

  /** basic.ack / basic.nack from the broker for publish `tag` (and, with multiple, every one before it). */
  confirm(tag: number, multiple: boolean, nack: boolean): void {
    const list = this.list;
    const idx = tag - this.base;
    if (idx < 0 || idx >= list.length) return; // already confirmed, e.g. a repeated multiple ack
    for (let i = multiple ? 0 : idx; i <= idx; i++) {
      const u = list.at(i);
      if (u === undefined) continue;
      list.set(i, undefined);
      this.count--;
      if (nack) this.nacked++;
      else this.confirmed++;
      if (nack) settle(u, new NackError(`the broker nacked publish #${tag}${multiple ? " (multiple)" : ""}`));
      else settle(u, typeof u === "object" ? u.returned : undefined);
    }
    let holes = 0;
    while (holes < list.length && list.at(holes) === undefined) holes++;
    list.skip(holes);
    this.base += holes;
    if (this.count === 0) this.allConfirmed.wake();
    this.makeRoom();
  }

  /** Whether a publish may go out now: below the limit, and nobody waiting before it. */
  get hasRoom(): boolean {
    return this.count < this.limit && this.room.size === 0 && this.paused === undefined;
  }

  /** Run `publish` once the window has room for it, after those that waited before it. */
  whenRoom<T>(bounds: Bounds, publish: () => Promise<T>): Promise<T> {
    return this.room.wait("publish (waiting for room in the confirm window; not sent)", bounds, publish);
  }

  /** A batch out of room part-way: `resume` it once there is, before those waiting. */
  pause(resume: () => void): void {
    this.paused = resume;
  }

  /** Each woken publish adds itself (or waits elsewhere, in order): wake while there is room. */
  private makeRoom(): void {
    while (this.count < this.limit) {
      const resume = this.paused;
      if (resume !== undefined) {
        this.paused = undefined;
        resume();
      } else if (!this.room.wakeOne(undefined)) return;
    }
  }

  /** Resolves once every publish so far is acked or nacked; `bounds` end the wait, not the publishes. */
  waitAll(bounds: Bounds): Promise<void> {
    if (this.count === 0) return RESOLVED;
    const confirmed = this.allConfirmed.wait("waitForConfirms");
    return bounds.timeout === undefined && bounds.signal === undefined
      ? confirmed
      : bounded(confirmed, bounds, "waitForConfirms");
  }

  /** Empties the window, handing back what was waiting in it, in order. */
  take(): Entry[] {
    const waiting = this.list.drain().filter((u): u is Entry => u !== undefined);
    this.count = 0;
    this.makeRoom();
    return waiting;
  }

  /** A new channel numbers its publishes from 1 again (after a recovery). */
  restart(): void {
    this.base = 1;
  }

  /** The channel went: every publish waiting and every waitAll() rejects with `reason`. */
  fail(reason: AmqpError): void {
    this.room.fail(reason);
    for (const u of this.take()) settle(u, reason);
    this.allConfirmed.fail(reason);
  }

  /** Only waitAll() callers fail (the publishes were taken by recovery). */
  failWaiters(reason: AmqpError): void {
    this.allConfirmed.fail(reason);
  }
}
