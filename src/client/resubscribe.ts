/**
 * Consumers that heal (opt-in, the `resubscribe` consume option): the attempts, with backoff,
 * to consume again after the broker cancelled a consumer or closed its channel (what each step
 * does is consumer.ts's).
 *
 * A basic.consume of a queue that does not exist closes the channel (404), so each attempt first
 * makes sure the queue is there: with `declare`, by declaring it again (the same arguments, or
 * the broker refuses with 406); without, by a passive declare on a side channel of the same
 * connection, which a 404 may close. Since RabbitMQ 4.2.6 / 4.3 a passive declare needs the
 * configure permission: a user who may only read cannot look, and consumes straight away (a
 * missing queue then closes the consumer's channel, and the next attempt opens another). A 403
 * on the consume itself (or on the declare) ends the attempts at once with that
 * AccessRefusedError: waiting does not grant permissions.
 */
import type { QueueDeclareOptions } from "./channel-options.js";
import { AccessRefusedError, AmqpError } from "./errors.js";
import { MAX_TIMER_MS, backoffDelay, sleep, type Backoff } from "./wait.js";

/** The `resubscribe` consume option, when not just `true`: the backoff of a consumer's attempts to consume again. */
export interface ResubscribeOptions {
  /** Delay before the first attempt, in ms (default 100); each next one waits twice as long. */
  initialDelay?: number;
  /** Upper bound of the delay between attempts, in ms (default 30000). */
  maxDelay?: number;
  /** Attempts before giving up (default Infinity); then "resubscribeFailed" and onCancel. */
  maxAttempts?: number;
  /** Declare the queue again, with these options, before each attempt. */
  declare?: QueueDeclareOptions;
}

export interface Resubscribe {
  backoff: Backoff;
  maxAttempts: number;
  declare: QueueDeclareOptions | undefined;
}

/** The consume option resolved and checked; undefined when off. */
export function resubscribeOptions(o: boolean | ResubscribeOptions | undefined): Resubscribe | undefined {
  if (o === undefined || o === false) return undefined;
  const r = o === true ? {} : o;
  const delay = (name: "initialDelay" | "maxDelay", fallback: number) => {
    const v = r[name] ?? fallback;
    if (!(typeof v === "number" && v >= 0 && v <= MAX_TIMER_MS))
      throw new RangeError(
        `consume: resubscribe.${name} must be a number of ms from 0 to ${MAX_TIMER_MS}, got ${String(v)}`,
      );
    return v;
  };
  const maxAttempts = r.maxAttempts ?? Infinity;
  if (!(maxAttempts >= 1))
    throw new RangeError(`consume: resubscribe.maxAttempts must be at least 1, got ${String(r.maxAttempts)}`);
  return {
    backoff: { initialDelay: delay("initialDelay", 100), maxDelay: delay("maxDelay", 30_000), factor: 2, jitter: 0.5 },
    maxAttempts,
    declare: r.declare,
  };
}

/** What one attempt does. */
export interface ResubscribeSteps {
  /** Attempts can still succeed (the connection is open). */
  live(): boolean;
  /** Whether the queue exists; undefined when the user may not look (403 on a passive declare). */
  exists(): Promise<boolean | undefined>;
  declare(options: QueueDeclareOptions): Promise<void>;
  /** basic.consume again; resolves with the new consumer tag. */
  consume(): Promise<string>;
}

/** Attempts with backoff until one consumes; rejects with why it gave up. `signal`: the user cancelled. */
export async function resubscribe(
  queue: string,
  steps: ResubscribeSteps,
  r: Resubscribe,
  signal: AbortSignal,
): Promise<string> {
  let last: unknown;
  for (let attempt = 1; attempt <= r.maxAttempts; attempt++) {
    await sleep(backoffDelay(attempt, r.backoff), signal);
    if (signal.aborted) throw new AmqpError(`resubscribing to ${queue} stopped: the consumer was cancelled`);
    if (!steps.live()) break;
    try {
      if (r.declare !== undefined) await steps.declare(r.declare);
      else if ((await steps.exists()) === false) {
        last = new AmqpError(`queue ${JSON.stringify(queue)} does not exist`);
        continue;
      }
      return await steps.consume();
    } catch (e) {
      if (e instanceof AccessRefusedError) throw e;
      last = e;
      if (!steps.live()) break;
    }
  }
  const why = last instanceof Error ? `: ${last.message}` : "";
  throw new AmqpError(
    steps.live()
      ? `gave up resubscribing to ${queue} after ${r.maxAttempts} attempts${why}`
      : `cannot resubscribe to ${queue}: the connection closed${why}`,
    { cause: last },
  );
}
