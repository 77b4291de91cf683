/**
 * The callback form of a consumer: a handler per delivery, at most `concurrency` running at
 * once, the rest waiting here in delivery order (the prefetch window bounds how many; past
 * `highWaterMark` waiting, as with noAck, the connection stops reading its socket until the
 * handlers catch up). With `settle: "auto"` a delivery is acked once its handler returns or
 * resolves, and rejected (basic.reject: a failed delivery, which RabbitMQ counts toward
 * x-delivery-limit) once it throws or rejects, requeued or not by the `requeue` policy. What a
 * handler throws goes to `failed`, never unhandled.
 *
 * When the consumer ends (cancelled, or its channel closed), the deliveries still waiting are
 * given back to the broker (basic.nack, requeue: a return, not a failure): no handler will run
 * for them. In noAck mode there is nothing to give back, so they still run: the broker has let
 * go of them. Once its channel or connection begins to close (`stop`), no handler starts any
 * more: what waits, and what still arrives before the close cancels the consumer, goes back
 * (nacked) once the running handlers are done (noAck: it is dropped, as the spec has frames
 * after channel.close dropped).
 */
import type { ConsumerSink } from "./message-stream.js";
import { processTrace, traced, type ProcessContext } from "./diagnostics.js";
import type { AmqpError } from "./errors.js";
import type { Message } from "./message.js";
import type { HeldWatch } from "./held-watch.js";
import { Queue } from "./queue.js";
import { Waiters, isThenable } from "./wait.js";

export interface HandlerHost {
  /** basic.nack with requeue: deliveries no handler will see go back, not counted as failed. */
  giveBack(msgs: readonly Message[]): void;
  /** A handler threw or rejected. */
  failed(err: unknown, msg: Message): void;
  /** What a traced handler run carries (diagnostics.ts, warren:process). */
  context(msg: Message): ProcessContext;
  /** Stop and resume reading the socket: too many deliveries wait for a handler. */
  pauseReading(): void;
  resumeReading(): void;
}

export interface HandlerOptions {
  noAck: boolean;
  /** Warns of deliveries held too long (consumerTimeout); undefined when not asked. */
  watch?: HeldWatch | undefined;
  concurrency: number;
  settle: "manual" | "auto";
  requeue: boolean | ((err: unknown, msg: Message) => boolean);
  /** Takes a failed delivery instead of a reject (retry.ts). */
  retry?: { failed(msg: Message): unknown } | undefined;
  /** Deliveries waiting for a handler past which the socket is paused (resumed below half). */
  highWaterMark: number;
}

/** Default requeue policy: one more try, then the broker dead-letters it (or drops it, with no dead-letter exchange). */
const onceMore = (_err: unknown, msg: Message) => !msg.fields.redelivered;

/** The sink whose handler is running synchronously right now (a close it calls is its own). */
let calling: HandlerSink | undefined;
let sinks = 0;

export class HandlerSink implements ConsumerSink {
  readonly noAck: boolean;
  private runs = 0;
  /** Deliveries given to this sink (stats.ts). */
  delivered = 0;
  private readonly waiting = new Queue<Message>();
  private pumping = false;
  private ended = false;
  /** Its channel or connection is closing: no handler starts any more. */
  private stopped = false;
  private pausing = false;
  /**
   * Runs of this sink awaiting a close they called: a drain does not wait for them (they wait
   * for the close, which waits for the drain).
   */
  private closers = 0;
  /** Ended while closing, with handlers still running: what waits goes back once they are done. */
  private returnWhenIdle = false;
  private readonly idle = new Waiters();
  /** Settles a handler's promise: an async function named after this sink (namedSettler). */
  private readonly settleAsync: (r: PromiseLike<unknown>, msg: Message) => Promise<void>;
  /** The name of settleAsync, as a stack trace has it. */
  readonly frame: string;

  constructor(
    private readonly handler: (msg: Message) => unknown,
    private readonly options: HandlerOptions,
    private readonly host: HandlerHost,
    private readonly onEnd: (err: AmqpError | undefined) => void,
  ) {
    this.noAck = options.noAck;
    this.frame = `warren_handler_${++sinks}`;
    this.settleAsync = namedSettler(this.frame, (msg, err, failed) => this.finish(msg, err, failed));
  }

  deliver(msg: Message): void {
    this.delivered++;
    if (this.stopped) {
      if (!this.noAck) this.waiting.push(msg); // given back when the close's cancel ends the consumer
      return;
    }
    this.options.watch?.delivered(msg);
    if (this.waiting.length === 0 && this.runs < this.options.concurrency) return this.run(msg);
    this.waiting.push(msg);
    if (!this.pausing && this.waiting.length >= this.options.highWaterMark) {
      this.pausing = true;
      this.host.pauseReading();
    }
    this.pump();
  }

  /** Start handlers while there is room; a handler that finishes at once does not recurse into the next. */
  private pump(): void {
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    while (this.runs < this.options.concurrency && this.waiting.length > 0) this.run(this.waiting.shift()!);
    this.pumping = false;
    if (this.pausing && this.waiting.length < this.options.highWaterMark / 2) this.stopPausing();
  }

  private run(msg: Message): void {
    this.runs++;
    let r: unknown;
    const outer = calling;
    calling = this;
    try {
      r = processTrace.hasSubscribers
        ? traced(processTrace, this.host.context(msg), () => this.handler(msg))
        : this.handler(msg);
    } catch (e) {
      return this.finish(msg, e, true);
    } finally {
      calling = outer;
    }
    if (isThenable(r)) void this.settleAsync(r, msg);
    else this.finish(msg, undefined, false);
  }

  private finish(msg: Message, err: unknown, failed: boolean): void {
    if (failed) this.host.failed(err, msg);
    if (this.options.settle === "auto" && !this.noAck) {
      if (!failed) msg.ack();
      else if (this.options.retry !== undefined) {
        // The run lasts until the retry has settled the delivery (a drain waits for it).
        let r: unknown;
        try {
          r = this.options.retry.failed(msg);
        } catch (e) {
          this.host.failed(e, msg);
        }
        if (isThenable(r)) return void r.then(this.done, (e: unknown) => (this.host.failed(e, msg), this.done()));
      } else {
        const requeue = this.options.requeue;
        // basic.reject, not nack: on RabbitMQ 4.3 only a reject counts as a failed delivery
        // toward the queue's x-delivery-limit (a nack is a plain return, unlimited).
        msg.reject({ requeue: typeof requeue === "function" ? requeue(err, msg) : requeue });
      }
    }
    this.done();
  }

  /** A run is over: the next may start. */
  private readonly done = (): void => {
    this.runs--;
    this.pump();
    this.checkIdle();
  };

  private checkIdle(): void {
    if (this.runs > this.closers || (this.waiting.length > 0 && !this.stopped)) return;
    if (this.returnWhenIdle) {
      this.returnWhenIdle = false;
      this.host.giveBack(this.waiting.drain());
    }
    this.idle.wake();
  }

  private stopPausing(): void {
    if (!this.pausing) return;
    this.pausing = false;
    this.host.resumeReading();
  }

  end(err: AmqpError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.options.watch?.stop();
    this.stopPausing();
    // Closing, after the running handlers have settled: the deliveries given back then follow the
    // settled ones, and go as one nack multiple (delivery-tags.ts giveBack says why that matters).
    if (this.stopped && this.runs > this.closers) this.returnWhenIdle = true;
    else if (!this.noAck && this.waiting.length > 0) this.host.giveBack(this.waiting.drain());
    this.checkIdle();
    this.onEnd(err);
  }

  /**
   * The channel or connection begins to close: no handler starts from now on. What waits stays
   * unacked (the close requeues it; a cancel first gives it back); noAck, it is dropped.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopPausing(); // the close must read its close-ok
    if (this.noAck) this.waiting.clear();
    this.checkIdle();
  }

  /** Resubscribed (resubscribe.ts): the same handlers, counted together, take the new consumer's deliveries. */
  resubscribed(): void {
    this.ended = false;
  }

  /** The connection was lost: the broker has requeued what waits here (noAck: it is ours, it still runs). */
  suspend(): void {
    this.options.watch?.stop();
    this.stopPausing();
    if (!this.noAck) this.waiting.clear();
  }

  get busy(): boolean {
    return this.runs > 0;
  }

  get running(): number {
    return this.runs;
  }

  get buffered(): number {
    return this.waiting.length;
  }

  /** Resolves once no handler runs but those awaiting a close they called (at most `timeout` ms, then resolves anyway). */
  drain(timeout: number): Promise<void> {
    if (this.runs <= this.closers && (this.waiting.length === 0 || this.stopped)) return Promise.resolve();
    return this.idle.wait("drain", { timeout }).catch(() => undefined);
  }

  /** One of this sink's runs awaits a close it called, until `closed` settles: drains do not wait for it. */
  closing(closed: Promise<unknown>): void {
    this.closers++;
    this.checkIdle();
    const done = () => void this.closers--;
    closed.then(done, done);
  }
}

/**
 * Of `candidates`, the sinks whose handler is calling now: the one running synchronously, or,
 * after an `await` in the handler, those named in the async stack trace (V8 links an async
 * handler's continuation to the async function that awaits it, settleAsync). Only asked when a
 * close begins while handlers run: a stack trace is costly, a close is rare.
 */
export function callingSinks(candidates: Iterable<ConsumerSink>): ConsumerSink[] {
  const busy = [...candidates].filter((s) => s.frame !== undefined && s.busy === true);
  if (busy.length === 0) return [];
  if (calling !== undefined) return busy.filter((s) => s.frame === calling!.frame);
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 200;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  // "at async warren_handler_12 (file:...)", or without "async" where a source-map formatter
  // (vitest's, source-map-support) writes the frames.
  const named = new Set(stack.match(/warren_handler_\d+(?!\d)/g));
  return busy.filter((s) => named.has(s.frame!));
}

type Finish = (msg: Message, err: unknown, failed: boolean) => void;

/**
 * An async function called `name` that awaits a handler's promise, then finishes the run: a
 * close called from the handler after an `await` finds it in the async stack trace ("at async
 * warren_handler_12"), both V8 (Node.js, Deno) and JavaScriptCore (Bun) linking the handler's
 * continuation to the async function that awaits it. JavaScriptCore names a frame only after a
 * function's own name, so it is made with that name where the runtime compiles code from a
 * string; elsewhere (code generation disallowed) the name is a computed key, which V8 shows.
 */
function namedSettler(name: string, finish: Finish): (r: PromiseLike<unknown>, msg: Message) => Promise<void> {
  try {
    const make = new Function(
      "finish",
      `return async function ${name}(r, msg) { try { await r; } catch (e) { return finish(msg, e, true); } finish(msg, undefined, false); };`,
    );
    return make(finish) as (r: PromiseLike<unknown>, msg: Message) => Promise<void>;
  } catch {
    return {
      async [name](r: PromiseLike<unknown>, msg: Message): Promise<void> {
        try {
          await r;
        } catch (e) {
          return finish(msg, e, true);
        }
        finish(msg, undefined, false);
      },
    }[name]!;
  }
}

/** The options a callback consumer was given, resolved and checked. */
export function handlerOptions(o: {
  noAck?: boolean;
  concurrency?: number;
  settle?: "manual" | "auto";
  requeue?: HandlerOptions["requeue"];
  retry?: HandlerOptions["retry"];
  highWaterMark?: number;
}): HandlerOptions {
  const concurrency = o.concurrency ?? 1;
  if (!(Number.isSafeInteger(concurrency) && concurrency >= 1))
    throw new RangeError(`consume: concurrency must be a positive integer, got ${String(o.concurrency)}`);
  const settle = o.settle ?? "manual";
  if (settle !== "manual" && settle !== "auto")
    throw new TypeError(`consume: settle must be "manual" or "auto", got ${JSON.stringify(o.settle)}`);
  const highWaterMark = o.highWaterMark ?? 1000;
  if (!Number.isSafeInteger(highWaterMark) || highWaterMark < 1)
    throw new RangeError(`consume: highWaterMark must be a positive integer, got ${String(o.highWaterMark)}`);
  if (o.retry !== undefined && typeof o.retry?.failed !== "function")
    throw new TypeError("consume: retry must have a failed(msg) method (a RetryTopology)");
  return {
    noAck: o.noAck ?? false,
    concurrency,
    settle,
    requeue: o.requeue ?? onceMore,
    retry: o.retry,
    highWaterMark,
  };
}
