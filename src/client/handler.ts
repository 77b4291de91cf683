/**
 * The callback form of a consumer: a handler per delivery, at most `concurrency` running at
 * once, the rest waiting here in delivery order (the prefetch window bounds how many). With
 * `settle: "auto"` a delivery is acked once its handler returns or resolves, and nacked once it
 * throws or rejects, requeued or not by the `requeue` policy. What a handler throws goes to
 * `failed`, never unhandled.
 *
 * When the consumer ends (cancelled, or its channel closed), the deliveries still waiting are
 * given back to the broker (basic.reject, requeue): no handler will run for them. In noAck mode
 * there is nothing to give back, so they still run: the broker has let go of them.
 */
import type { ConsumerSink } from "./consumer.js";
import { processTrace, traced, type ProcessContext } from "./diagnostics.js";
import type { AmqpError } from "./errors.js";
import type { Message } from "./message.js";
import type { HeldWatch } from "./held-watch.js";
import { Waiters, isThenable } from "./wait.js";

export interface HandlerHost {
  /** basic.reject with requeue: a delivery no handler will see. */
  giveBack(msg: Message): void;
  /** A handler threw or rejected. */
  failed(err: unknown, msg: Message): void;
  /** What a traced handler run carries (diagnostics.ts, warren:process). */
  context(msg: Message): ProcessContext;
}

export interface HandlerOptions {
  noAck: boolean;
  /** Warns of deliveries held too long (consumerTimeout); undefined when not asked. */
  watch?: HeldWatch | undefined;
  concurrency: number;
  settle: "manual" | "auto";
  requeue: boolean | ((err: unknown, msg: Message) => boolean);
}

/** Default requeue policy: one more try, then the broker dead-letters it (or drops it, with no dead-letter exchange). */
const onceMore = (_err: unknown, msg: Message) => !msg.fields.redelivered;

export class HandlerSink implements ConsumerSink {
  readonly noAck: boolean;
  private running = 0;
  private readonly waiting: Message[] = [];
  private pumping = false;
  private ended = false;
  private readonly idle = new Waiters();

  constructor(
    private readonly handler: (msg: Message) => unknown,
    private readonly options: HandlerOptions,
    private readonly host: HandlerHost,
    private readonly onEnd: (err: AmqpError | undefined) => void,
  ) {
    this.noAck = options.noAck;
  }

  deliver(msg: Message): void {
    this.options.watch?.delivered(msg);
    if (this.waiting.length === 0 && this.running < this.options.concurrency) return this.run(msg);
    this.waiting.push(msg);
    this.pump();
  }

  /** Start handlers while there is room; a handler that finishes at once does not recurse into the next. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    while (this.running < this.options.concurrency && this.waiting.length > 0) this.run(this.waiting.shift()!);
    this.pumping = false;
  }

  private run(msg: Message): void {
    this.running++;
    let r: unknown;
    try {
      r = processTrace.hasSubscribers ? traced(processTrace, this.host.context(msg), () => this.handler(msg)) : this.handler(msg);
    } catch (e) {
      return this.finish(msg, e, true);
    }
    if (isThenable(r)) r.then(() => this.finish(msg, undefined, false), (e: unknown) => this.finish(msg, e, true));
    else this.finish(msg, undefined, false);
  }

  private finish(msg: Message, err: unknown, failed: boolean): void {
    this.running--;
    if (failed) this.host.failed(err, msg);
    if (this.options.settle === "auto" && !this.noAck) {
      if (!failed) msg.ack();
      else {
        const requeue = this.options.requeue;
        msg.nack({ requeue: typeof requeue === "function" ? requeue(err, msg) : requeue });
      }
    }
    this.pump();
    if (this.running === 0 && this.waiting.length === 0) this.idle.wake();
  }

  end(err: AmqpError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.options.watch?.stop();
    if (!this.noAck) for (const msg of this.waiting.splice(0)) this.host.giveBack(msg);
    if (this.running === 0 && this.waiting.length === 0) this.idle.wake();
    this.onEnd(err);
  }

  /** Resubscribed (resubscribe.ts): the same handlers, counted together, take the new consumer's deliveries. */
  reopen(): void {
    this.ended = false;
  }

  /** The connection was lost: the broker has requeued what waits here (noAck: it is ours, it still runs). */
  suspend(): void {
    this.options.watch?.stop();
    if (!this.noAck) this.waiting.length = 0;
  }

  get busy(): boolean {
    return this.running > 0;
  }

  /** Resolves once no handler runs and none waits (at most `timeout` ms, then resolves anyway). */
  drain(timeout: number): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return this.idle.wait("drain", { timeout }).catch(() => undefined);
  }
}

/** The options a callback consumer was given, resolved and checked. */
export function handlerOptions(o: { noAck?: boolean; concurrency?: number; settle?: "manual" | "auto"; requeue?: HandlerOptions["requeue"] }): HandlerOptions {
  const concurrency = o.concurrency ?? 1;
  if (!(Number.isSafeInteger(concurrency) && concurrency >= 1)) throw new RangeError(`consume: concurrency must be a positive integer, got ${String(o.concurrency)}`);
  const settle = o.settle ?? "manual";
  if (settle !== "manual" && settle !== "auto") throw new TypeError(`consume: settle must be "manual" or "auto", got ${JSON.stringify(o.settle)}`);
  return { noAck: o.noAck ?? false, concurrency, settle, requeue: o.requeue ?? onceMore };
}
