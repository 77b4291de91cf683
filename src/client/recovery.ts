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
 *      host of `url` in turn (hosts.ts: as listed or shuffled, the host just given up on last);
 *      repeat until one answers or `maxAttempts` rounds have failed
 *      ("recoveryFailed", then "close" with the error). Credentials from a provider are fetched
 *      afresh for each attempt (credentials.ts); the broker refusing those (AuthenticationError)
 *      ends recovery at once with that error: trying again would be refused again.
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
import type { ConnectionEvents } from "./connection-events.js";
import type { ConnectionControl, RecoveryHooks } from "./connection.js";
import {
  AmqpError,
  AuthenticationError,
  ConfirmTimeoutError,
  ConnectionClosedError,
  InternalError,
  isClientClose,
} from "./errors.js";
import { hostsToTry, type HostOrder } from "./hosts.js";
import type { ResolvedOptions, ResolvedRecovery } from "./options.js";
import { Topology } from "./topology.js";
import { Waiters, backoffDelay, sleep } from "./wait.js";

/** One per recovering connection: the reconnect loop, and the record of what to restore. */
export class Recovery implements RecoveryHooks {
  readonly topology = new Topology();
  /** Callers waiting for a socket (openChannel while recovering). */
  private readonly reconnected = new Waiters();
  private running = false;
  private readonly abort = new AbortController();
  /** Why the connection was lost, or why the latest connect attempt failed. */
  private lastError: AmqpError | undefined;
  /** The host the connection is on now (or was on when lost). */
  private current: ResolvedOptions | undefined;
  /** The host given up on last: lost while restoring on it, or it closed the connection with 541. Tried last. */
  private passOver: ResolvedOptions | undefined;

  /** `connectTo` runs one attempt at one endpoint on `target` (connect.ts): the handshake over a new socket. */
  constructor(
    private readonly target: ConnectionControl,
    private readonly endpoints: readonly ResolvedOptions[],
    private readonly connectTo: (endpoint: ResolvedOptions, signal: AbortSignal) => Promise<void>,
    private readonly options: ResolvedRecovery,
    private readonly order: HostOrder,
  ) {}

  /** The first connect succeeded on `endpoint`. */
  connectedTo(endpoint: ResolvedOptions): void {
    this.current = endpoint;
  }

  get waitTimeout(): number {
    return this.options.waitTimeout ?? this.target.options.timeout;
  }

  get republishUnconfirmed(): boolean {
    return this.options.republishUnconfirmed;
  }

  /** Whether a loss for this reason is worth reconnecting after (not a refusal, not a protocol error, not our own close). */
  shouldRecover(reason: AmqpError): boolean {
    return (
      !this.abort.signal.aborted &&
      reason instanceof ConnectionClosedError &&
      reason.recoverable &&
      reason.initiatedBy !== "client"
    );
  }

  connected(what: string, signal: AbortSignal | undefined): Promise<void> {
    return this.reconnected.wait(`${what} (waiting for the connection to recover)`, {
      timeout: this.waitTimeout,
      signal,
    });
  }

  private emit<K extends keyof ConnectionEvents>(event: K, ...args: ConnectionEvents[K]): void {
    const conn = this.target.connection;
    (conn.emit as (e: K, ...a: ConnectionEvents[K]) => boolean).call(conn, event, ...args);
  }

  /** The connection was lost (it is now "recovering"): start the loop unless it runs already. */
  lost(reason: AmqpError): void {
    this.emit("disconnect", reason);
    this.lastError = reason;
    // The node answers but cannot act (a minority node, RabbitMQ 4.3): it refused a declare with
    // 541, or stopped confirming publishes (confirm-watch.ts). Try the others first.
    if (reason instanceof InternalError || reason instanceof ConfirmTimeoutError) this.passOver = this.current;
    if (this.running) return; // lost again while restoring: the loop notices and starts over
    this.running = true;
    this.run()
      .finally(() => (this.running = false))
      .then((recovered) => {
        // Only once the loop is over: a listener that loses the connection again starts a new one.
        if (recovered) this.emit("topologyRecovered");
      })
      .catch((err: unknown) => {
        // A bug in recovery itself, or a listener that threw: close rather than leave the
        // connection hanging in "recovering".
        this.target.fail(
          err instanceof AmqpError ? err : new AmqpError(`recovery failed: ${String(err)}`, { cause: err }),
        );
      });
  }

  stop(reason: AmqpError): void {
    this.abort.abort();
    this.reconnected.fail(reason);
  }

  /** Reconnects and restores; true when the connection is open again with everything restored. */
  private async run(): Promise<boolean> {
    const target = this.target;
    const signal = this.abort.signal;
    let attempt = 0;
    for (;;) {
      if (signal.aborted) return false;
      if (attempt >= this.options.maxAttempts) {
        this.giveUp(attempt);
        return false;
      }
      attempt++;
      const delay = backoffDelay(attempt, this.options);
      this.emit("reconnecting", { attempt, delay, error: this.lastError });
      await sleep(delay, signal);
      if (signal.aborted) return false;
      let connected = false;
      for (const e of hostsToTry(this.endpoints, this.order, this.passOver)) {
        try {
          await this.connectTo(e, signal);
          this.current = e;
          connected = true;
          break;
        } catch (err) {
          this.lastError = err instanceof AmqpError ? err : new AmqpError(String(err), { cause: err });
          if (signal.aborted) return false;
          // Refused with credentials just fetched from the provider: another try would be refused too.
          if (err instanceof AuthenticationError && e.credentials !== undefined) {
            this.giveUp(attempt, err);
            return false;
          }
        }
      }
      if (!connected) continue;
      // Now "restoring": the topology and the channels are put back before it is "open".
      this.emit("reconnected", { attempt, hostname: target.options.hostname, port: target.options.port });
      this.reconnected.wake();
      for (const [step, what] of [
        [() => this.restoreTopology(), "topology"],
        [() => this.restoreChannels(), "channels"],
      ] as const) {
        try {
          await step();
        } catch (err) {
          if (target.phase !== "restoring") break; // lost again (or closed): see below
          this.report(err, what);
        }
      }
      if (target.phase === "recovering") {
        this.passOver = this.current; // lost again while restoring there: another round, elsewhere first
        continue;
      }
      target.restored();
      return target.phase === "open";
    }
  }

  private report(err: unknown, what: string): void {
    this.emit("recoveryError", err instanceof AmqpError ? err : new AmqpError(String(err), { cause: err }), what);
  }

  /** Stop for good: after maxAttempts, or with `refused` (fresh credentials the broker refused). */
  private giveUp(attempts: number, refused?: AuthenticationError): void {
    const last = this.lastError;
    const err =
      refused ??
      new ConnectionClosedError({
        replyCode: 0,
        replyText: `gave up reconnecting after ${attempts} attempt${attempts === 1 ? "" : "s"}${last ? `: ${last.message}` : ""}`,
        initiatedBy: "library",
        cause: last,
      });
    this.abort.abort();
    this.reconnected.fail(err);
    this.emit("recoveryFailed", err);
    this.target.fail(err);
  }

  /**
   * Declare again what was recorded, on a channel of our own. A refusal closes that channel:
   * report it, open another, carry on. Losing the connection throws (the loop starts over).
   */
  private async restoreTopology(): Promise<void> {
    const t = this.topology;
    let ch: Channel | undefined;
    const attempt = async (what: string, fn: (c: Channel) => Promise<void>): Promise<void> => {
      if (ch === undefined || ch.closed) ch = await this.target.openUnrecordedChannel();
      try {
        await fn(ch);
      } catch (err) {
        if (this.target.phase !== "restoring") throw err;
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
          this.emit("queueRenamed", { from: name, to: r.queue });
        }
      });
    }
    for (const b of [...t.bindings.values()]) {
      const what = `binding ${b.source} -> ${b.destination} (${JSON.stringify(b.routingKey)})`;
      if (b.kind === "queue")
        await attempt(what, (c) => c.queueBind(b.destination, b.source, b.routingKey, b.arguments));
      else await attempt(what, (c) => c.exchangeBind(b.destination, b.source, b.routingKey, b.arguments));
    }
    const last = ch as Channel | undefined;
    if (last !== undefined && !last.closed) await last.close();
  }

  /** Open every channel that was open again, in id order, with its prefetch, confirm mode and consumers. */
  private async restoreChannels(): Promise<void> {
    for (const ch of this.target.recoveringChannels()) {
      try {
        await ch.restore();
      } catch (err) {
        if (this.target.phase !== "restoring") throw err;
        if (!isClientClose(err)) this.report(err, `channel ${ch.id}`); // not when the user closed it meanwhile
      }
    }
  }
}
