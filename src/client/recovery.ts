/**
 * Automatic recovery (opt-in): `connect({ url: [a, b], recovery: { ... } })`.
 *
 * When a recovering connection is lost for a reason that trying again can fix (a lost socket,
 * missed heartbeats, 320 CONNECTION_FORCED from an operator or a broker shutdown), it does not
 * close. Instead:
 *
 *   1. "disconnect": every call in flight and every unconfirmed publish rejects with the loss
 *      reason (a ConnectionClosedError with `recoverable: true`): the broker may or may not
 *      have acted on them, so warren cannot resolve them. With `republishUnconfirmed`, the
 *      unconfirmed publishes are instead sent again on the new connection (at-least-once:
 *      the broker may then hold a message twice).
 *   2. "reconnecting" {attempt, delay}: wait with exponential backoff and jitter, then try each
 *      host of `url` in order; repeat until one answers or `maxAttempts` rounds have failed
 *      ("recoveryFailed", then "close" with the error).
 *   3. "reconnected": the same Connection object now runs over the new socket.
 *   4. The topology declared through this connection is declared again, in order: exchanges,
 *      queues (a server-named queue gets a new name: "queueRenamed" {from, to}, and its
 *      bindings and consumers follow the new name), then queue and exchange-to-exchange
 *      bindings. Deletes and unbinds remove what they undo from the record, and an auto-delete
 *      queue leaves it when its last consumer ends (the broker has deleted it). Exclusive and
 *      auto-delete queues died with the old connection and are declared again.
 *   5. Every channel that was open is opened again with the same id and the same Channel
 *      object: prefetch, confirm mode and consumers (same consumer tags, same callbacks,
 *      iterators keep going) are put back.
 *   6. "topologyRecovered": calls and publishes made while disconnected, which waited, go on.
 *
 * A refusal while re-declaring one entity (406 inequivalent arguments, 405 an exclusive queue
 * still held by the dead connection...) is reported as "recoveryError" and the rest carries on;
 * a channel that cannot be restored is closed with that error (its consumers end with it).
 *
 * Delivery tags: the broker numbers deliveries from 1 again on each new channel, so warren
 * offsets the new tags past the old ones; an ack, nack or reject of a delivery from before the
 * reconnect is not sent (the broker has requeued that message already; it will be redelivered
 * with `redelivered: true`) and returns an AmqpError saying so.
 */
import type { Channel } from "./channel.js";
import type { ConsumeOptions } from "./consumer.js";
import { typed, type FieldTable } from "../protocol/table.js";
import { AbortError, AmqpError, ConnectionClosedError, TimeoutError, isClientClose } from "./errors.js";
import type { Connection } from "./connection.js";
import { MAX_TIMER_MS } from "./timer.js";

export interface RecoveryOptions {
  /** Delay before the first reconnect attempt, in ms (default 100). */
  initialDelay?: number;
  /** Upper bound of the delay between attempts, in ms (default 30000). */
  maxDelay?: number;
  /** Each attempt waits `factor` times longer than the one before (default 2). */
  factor?: number;
  /**
   * Jitter, 0 to 1 (default 0.5): each delay is drawn at random from [d * (1 - jitter), d], so
   * that many clients cut off together do not all come back in the same instant.
   */
  jitter?: number;
  /** Rounds of attempts (each round tries every host in order) before giving up; default Infinity. */
  maxAttempts?: number;
  /**
   * How long calls and publishes made while the connection is down wait for it to come back,
   * in ms, before rejecting with a TimeoutError (default: the connection's `timeout`). A publish
   * can also be given `signal` to stop waiting.
   */
  waitTimeout?: number;
  /** Send unconfirmed publishes again on the new connection instead of rejecting them (default false). */
  republishUnconfirmed?: boolean;
}

export interface ReconnectingInfo {
  /** 1 for the first round after a loss. */
  attempt: number;
  /** Milliseconds until this attempt. */
  delay: number;
  /** Why the previous attempt failed (for the first attempt: why the connection was lost). */
  error: AmqpError | undefined;
}

export interface RecoveryEvents {
  /** The connection was lost; recovery begins. */
  disconnect: [err: AmqpError];
  /** A reconnect attempt is scheduled. */
  reconnecting: [info: ReconnectingInfo];
  /** A new connection is up (topology and channels are being restored). */
  reconnected: [info: { attempt: number; hostname: string; port: number }];
  /** A server-named queue was declared again and got a new name. */
  queueRenamed: [info: { from: string; to: string }];
  /** Recovery is complete: topology, channels, prefetch, confirm mode and consumers are back. */
  topologyRecovered: [];
  /** Something could not be restored (`what` names it); the rest of recovery went on. */
  recoveryError: [err: AmqpError, what: string];
  /** Recovery gave up (maxAttempts); "close" follows with the same error. */
  recoveryFailed: [err: AmqpError];
}

/** What recovery reads of a host to reconnect to (connect()'s resolved options, one per URL). */
interface Endpoint {
  hostname: string;
  port: number;
}

// ---------------------------------------------------------------------------------------------
// waiting for the connection to come back

/**
 * @internal Callers held while the connection is down: each waits at most `ms` (TimeoutError) and can be
 * let go by its AbortSignal (AbortError); all are released by open() or rejected by fail().
 */
export class ResumeGate {
  private waiters = new Set<{ resolve: () => void; reject: (e: unknown) => void }>();

  wait(ms: number, what: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new AbortError(`${what} aborted while the connection was recovering`));
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiters.delete(w);
      };
      const w = {
        resolve: () => (done(), resolve()),
        reject: (e: unknown) => (done(), reject(e)),
      };
      const onAbort = () => w.reject(new AbortError(`${what} aborted while the connection was recovering`));
      const timer = setTimeout(() => w.reject(new TimeoutError(`${what} waited ${ms} ms for the connection to recover`)), ms);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(w);
    });
  }

  /** Let everyone go, in the order they came. */
  open(): void {
    for (const w of [...this.waiters]) w.resolve();
  }

  fail(err: unknown): void {
    for (const w of [...this.waiters]) w.reject(err);
  }
}

// ---------------------------------------------------------------------------------------------
// what a channel had set up

/** @internal A consumer as it was started, to start it again. */
export interface ConsumerRecord {
  queue: string;
  options: ConsumeOptions;
  /** The per-consumer prefetch (basic.qos global=false) in force when it was started. */
  prefetch: { count: number; size: number };
  /**
   * A stream consumer (started with `x-stream-offset`): the offset of the last message delivered
   * to it, from each delivery's `x-stream-offset` header. Restarted, it resumes after that one
   * instead of at its original offset, so it gets no message twice and misses none.
   */
  streamOffset?: number | bigint;
}

/** @internal The basic.consume arguments that start a recorded consumer again. */
export function resumeArguments(c: ConsumerRecord): Record<string, unknown> {
  const args = c.options.arguments ?? {};
  if (c.streamOffset === undefined) return args;
  const next = typeof c.streamOffset === "bigint" ? c.streamOffset + 1n : c.streamOffset + 1;
  return { ...args, "x-stream-offset": typed("l", next) };
}

/** @internal @internal Per channel: prefetch and consumers, in the order they were set up. */
export class ChannelRecord {
  constructor(private readonly topology: Topology) {}

  /** The latest basic.qos global=false (applies to consumers started after it). */
  perConsumer = { count: 0, size: 0 };
  /** The latest basic.qos global=true, if any. */
  shared: { count: number; size: number } | undefined;
  readonly consumers = new Map<string, ConsumerRecord>();

  qos(count: number, size: number, global: boolean): void {
    if (global) this.shared = { count, size };
    else this.perConsumer = { count, size };
  }

  consumer(tag: string, queue: string, options: ConsumeOptions): ConsumerRecord {
    const record: ConsumerRecord = { queue, options, prefetch: this.perConsumer };
    this.consumers.set(tag, record);
    this.topology.consumerAdded(queue);
    return record;
  }

  /** The consumer ended (cancelled by us or the broker). */
  drop(tag: string): void {
    const c = this.consumers.get(tag);
    if (c === undefined) return;
    this.consumers.delete(tag);
    this.topology.consumerRemoved(c.queue);
  }

  /** The channel closed: all its consumers ended. */
  clear(): void {
    for (const tag of [...this.consumers.keys()]) this.drop(tag);
  }
}

// ---------------------------------------------------------------------------------------------
// topology

interface ExchangeRecord {
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: FieldTable;
}
interface QueueRecord {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: FieldTable;
  /** Declared with "": the broker names it, so it is declared with "" again and may be renamed. */
  serverNamed: boolean;
}
interface BindingRecord {
  kind: "queue" | "exchange";
  destination: string;
  source: string;
  routingKey: string;
  arguments: FieldTable;
}

/** A stable key for a field table (bigint and Buffers included), to tell bindings apart. */
function tableKey(t: FieldTable): string {
  return JSON.stringify(t, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
}
function bindingKey(b: BindingRecord): string {
  return JSON.stringify([b.kind, b.destination, b.source, b.routingKey, tableKey(b.arguments)]);
}

/** @internal @internal The exchanges, queues and bindings declared through one connection, in order. */
export class Topology {
  readonly exchanges = new Map<string, ExchangeRecord>();
  readonly queues = new Map<string, QueueRecord>();
  readonly bindings = new Map<string, BindingRecord>();
  /** Consumers per queue, over every channel: an auto-delete queue is gone when its last one ends. */
  private readonly consumerCounts = new Map<string, number>();
  /** Old name -> new name of server-named queues, over the connection's life. */
  private readonly renames = new Map<string, string>();

  consumerAdded(queue: string): void {
    this.consumerCounts.set(queue, (this.consumerCounts.get(queue) ?? 0) + 1);
  }

  consumerRemoved(name: string): void {
    const queue = this.queueName(name);
    const n = (this.consumerCounts.get(queue) ?? 1) - 1;
    if (n > 0) {
      this.consumerCounts.set(queue, n);
      return;
    }
    this.consumerCounts.delete(queue);
    // The broker deletes an auto-delete queue once its last consumer is gone: so does the record,
    // or recovery would bring back a queue that nobody consumes and nothing will ever delete.
    if (this.queues.get(queue)?.autoDelete === true) this.queueDeleted(queue);
  }

  exchangeDeclared(name: string, r: ExchangeRecord): void {
    // The default exchange and amq.* always exist and may not be declared (403).
    if (name === "" || name.startsWith("amq.")) return;
    this.exchanges.set(name, r);
  }

  exchangeDeleted(name: string): void {
    this.exchanges.delete(name);
    for (const [k, b] of this.bindings) if (b.source === name || (b.kind === "exchange" && b.destination === name)) this.bindings.delete(k);
  }

  queueDeclared(asked: string, name: string, r: Omit<QueueRecord, "serverNamed">): void {
    this.queues.set(name, { ...r, serverNamed: asked === "" });
  }

  queueDeleted(name: string): void {
    this.queues.delete(name);
    for (const [k, b] of this.bindings) if (b.kind === "queue" && b.destination === name) this.bindings.delete(k);
  }

  bound(b: BindingRecord): void {
    this.bindings.set(bindingKey(b), b);
  }

  unbound(b: BindingRecord): void {
    this.bindings.delete(bindingKey(b));
  }

  /** The current name of a queue that may have been renamed by recovery (once or more). */
  queueName(name: string): string {
    let n = name;
    for (let next = this.renames.get(n); next !== undefined; next = this.renames.get(n)) n = next;
    return n;
  }

  /** A server-named queue came back as `to`: its record, bindings and consumer count follow. */
  rename(from: string, to: string): void {
    this.renames.set(from, to);
    const q = this.queues.get(from);
    this.queues.delete(from);
    if (q !== undefined) this.queues.set(to, q);
    const consumers = this.consumerCounts.get(from);
    this.consumerCounts.delete(from);
    if (consumers !== undefined) this.consumerCounts.set(to, consumers);
    for (const [k, b] of [...this.bindings]) {
      if (b.kind === "queue" && b.destination === from) {
        this.bindings.delete(k);
        this.bound({ ...b, destination: to });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the recovery loop

/** @internal The delay before attempt n (1-based): exponential, capped, with jitter. */
export function backoffDelay(attempt: number, o: Required<Pick<RecoveryOptions, "initialDelay" | "maxDelay" | "factor" | "jitter">>, random = Math.random): number {
  const base = Math.min(o.maxDelay, o.initialDelay * o.factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - o.jitter * random()));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** @internal @internal One per recovering connection. */
export class Recovery<E extends Endpoint = Endpoint> {
  readonly topology = new Topology();
  readonly initialDelay: number;
  readonly maxDelay: number;
  readonly factor: number;
  readonly jitter: number;
  readonly maxAttempts: number;
  readonly republishUnconfirmed: boolean;
  private readonly waitTimeoutOption: number | undefined;
  /** Holds openChannel() while there is no socket. */
  readonly connected = new ResumeGate();
  private running = false;
  private readonly abort = new AbortController();
  /** Why the connection was lost, or why the latest connect attempt failed. */
  private lastError: AmqpError | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly endpoints: readonly E[],
    private readonly connectTo: (endpoint: E, signal: AbortSignal) => Promise<Connection>,
    options: RecoveryOptions,
  ) {
    this.initialDelay = timerMs(options.initialDelay ?? 100, "initialDelay");
    this.maxDelay = timerMs(options.maxDelay ?? 30_000, "maxDelay");
    this.factor = nonNegative(options.factor ?? 2, "factor");
    this.jitter = options.jitter ?? 0.5;
    if (!(this.jitter >= 0 && this.jitter <= 1)) throw new RangeError(`recovery.jitter must be between 0 and 1, got ${options.jitter}`);
    this.maxAttempts = options.maxAttempts ?? Infinity;
    if (!(this.maxAttempts >= 1)) throw new RangeError(`recovery.maxAttempts must be at least 1, got ${options.maxAttempts}`);
    this.waitTimeoutOption = options.waitTimeout === undefined ? undefined : timerMs(options.waitTimeout, "waitTimeout");
    this.republishUnconfirmed = options.republishUnconfirmed ?? false;
  }

  get waitTimeout(): number {
    return this.waitTimeoutOption ?? this.conn.options.timeout;
  }

  /** Whether a loss for this reason is worth reconnecting after (not a refusal, not a protocol error, not our own close). */
  shouldRecover(reason: AmqpError): boolean {
    return !this.abort.signal.aborted && reason instanceof ConnectionClosedError && reason.recoverable && reason.initiatedBy !== "client";
  }

  /** The current name of a queue that may have been renamed by recovery. */
  queueName(name: string): string {
    return this.topology.queueName(name);
  }

  /** The connection was lost (it is now "recovering"): start the loop unless it runs already. */
  lost(reason: AmqpError): void {
    this.conn.emit("disconnect", reason);
    this.lastError = reason;
    if (this.running) return; // lost again while restoring: the loop notices and starts over
    this.running = true;
    this.run()
      .finally(() => (this.running = false))
      .then((recovered) => {
        // Only once the loop is over: a listener that loses the connection again starts a new one.
        if (recovered) this.conn.emit("topologyRecovered");
      })
      .catch((err: unknown) => {
        // A bug in recovery itself, or a listener that threw: close rather than leave the
        // connection hanging in "recovering".
        this.conn.fail(err instanceof AmqpError ? err : new AmqpError(`recovery failed: ${String(err)}`, { cause: err }));
      });
  }

  /** The user closed the connection: stop trying. */
  stop(reason: AmqpError): void {
    this.abort.abort();
    this.connected.fail(reason);
  }

  /** Reconnects and restores; true when the connection is open again with everything restored. */
  private async run(): Promise<boolean> {
    const conn = this.conn;
    const signal = this.abort.signal;
    let attempt = 0;
    for (;;) {
      if (signal.aborted) return false;
      if (attempt >= this.maxAttempts) {
        this.giveUp(attempt);
        return false;
      }
      attempt++;
      const delay = backoffDelay(attempt, this);
      conn.emit("reconnecting", { attempt, delay, error: this.lastError });
      await sleep(delay, signal);
      if (signal.aborted) return false;
      let fresh: Connection | undefined;
      let endpoint: E | undefined;
      for (const e of this.endpoints) {
        try {
          fresh = await this.connectTo(e, signal);
          endpoint = e;
          break;
        } catch (err) {
          this.lastError = err instanceof AmqpError ? err : new AmqpError(String(err), { cause: err });
          if (signal.aborted) return false;
        }
      }
      if (fresh === undefined || endpoint === undefined) continue;
      if (signal.aborted) {
        void fresh.close();
        return false;
      }
      conn.adopt(fresh);
      conn.emit("reconnected", { attempt, hostname: endpoint.hostname, port: endpoint.port });
      this.connected.open();
      for (const [step, what] of [
        [() => this.restoreTopology(), "topology"],
        [() => this.restoreChannels(), "channels"],
      ] as const) {
        try {
          await step();
        } catch (err) {
          if (conn.state !== "open") break; // lost again (or closed): see below
          this.report(err, what);
        }
      }
      if (conn.state === "recovering") continue; // lost again: another round
      conn.restored();
      return conn.state === "open";
    }
  }

  private report(err: unknown, what: string): void {
    this.conn.emit("recoveryError", err instanceof AmqpError ? err : new AmqpError(String(err), { cause: err }), what);
  }

  private giveUp(attempts: number): void {
    const last = this.lastError;
    const err = new ConnectionClosedError({
      replyCode: 0,
      replyText: `gave up reconnecting after ${attempts} attempt${attempts === 1 ? "" : "s"}${last ? `: ${last.message}` : ""}`,
      initiatedBy: "library",
      cause: last,
    });
    this.abort.abort();
    this.connected.fail(err);
    this.conn.emit("recoveryFailed", err);
    this.conn.fail(err);
  }

  /**
   * Declare again what was recorded, on a channel of our own. A refusal closes that channel:
   * report it, open another, carry on. Losing the connection throws (the loop starts over).
   */
  private async restoreTopology(): Promise<void> {
    const t = this.topology;
    let ch: Channel | undefined;
    const channel = async (): Promise<Channel> => {
      if (ch === undefined || ch.closed) {
        ch = await this.conn.openChannel();
        ch.recordTopology = false;
      }
      return ch;
    };
    const attempt = async (what: string, fn: (c: Channel) => Promise<void>): Promise<void> => {
      const c = await channel();
      try {
        await fn(c);
      } catch (err) {
        if (this.conn.state !== "open") throw err;
        this.report(err, what);
      }
    };
    for (const [name, x] of [...t.exchanges]) {
      await attempt(`exchange ${name}`, (c) => c.exchangeDeclare(name, x.type, x));
    }
    for (const [name, q] of [...t.queues]) {
      await attempt(`queue ${name}`, async (c) => {
        const r = await c.queueDeclare(q.serverNamed ? "" : name, q);
        if (r.queue !== name) {
          t.rename(name, r.queue);
          this.conn.emit("queueRenamed", { from: name, to: r.queue });
        }
      });
    }
    for (const b of [...t.bindings.values()]) {
      const what = `binding ${b.source} -> ${b.destination} (${JSON.stringify(b.routingKey)})`;
      if (b.kind === "queue") await attempt(what, (c) => c.queueBind(b.destination, b.source, b.routingKey, b.arguments));
      else await attempt(what, (c) => c.exchangeBind(b.destination, b.source, b.routingKey, b.arguments));
    }
    const last = ch as Channel | undefined;
    if (last !== undefined && !last.closed) await last.close();
  }

  /** Open every channel that was open again, in id order, with its prefetch, confirm mode and consumers. */
  private async restoreChannels(): Promise<void> {
    for (const ch of this.conn.recoveringChannels()) {
      try {
        await ch.restore();
      } catch (err) {
        if (this.conn.state !== "open") throw err;
        if (!isClientClose(err)) this.report(err, `channel ${ch.id}`); // not when the user closed it meanwhile
      }
    }
  }
}

function nonNegative(v: number, name: string): number {
  if (!(typeof v === "number" && v >= 0)) throw new RangeError(`recovery.${name} must be a number >= 0, got ${String(v)}`);
  return v;
}

/** A delay in ms, handed to setTimeout as it is. */
function timerMs(v: number, name: string): number {
  if (nonNegative(v, name) > MAX_TIMER_MS) throw new RangeError(`recovery.${name} must be at most ${MAX_TIMER_MS} ms (setTimeout's limit), got ${String(v)}`);
  return v;
}
