/**
 * Waiting, written once for the whole client: a list of waiters woken or failed together, a
 * bounded wait (a timeout and an AbortSignal, cleaned up whichever way it ends: watch), and a
 * sleep an AbortSignal cuts short. Every wait a caller can bound goes through `Bounds`.
 */
import { AbortError, TimeoutError } from "./errors.js";
import { Queue } from "./queue.js";

/**
 * setTimeout's limit. Node fires a longer delay (Infinity included) after 1 ms instead, with
 * only a warning, so a "wait forever" timeout would fail at once; every timeout warren takes
 * from a user is checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The one settled promise that waits handed out when nothing needs waiting for (publishing.ts tells it apart from a wait). */
export const RESOLVED: Promise<void> = Promise.resolve();

/** Whether `v` can be handed to setTimeout as a timeout: a number of ms in (0, MAX_TIMER_MS]. */
export function isTimeout(v: unknown): v is number {
  return typeof v === "number" && v > 0 && v <= MAX_TIMER_MS;
}

/** A timeout setTimeout cannot honour, refused with the name of what was given it. */
export function badTimeout(what: string, timeout: unknown): RangeError {
  return new RangeError(
    `${what}: timeout must be a number of ms from 1 to ${MAX_TIMER_MS} (setTimeout's limit), got ${String(timeout)}`,
  );
}

/** What ends a wait early: `timeout` ms (TimeoutError), `signal` (AbortError). */
export interface Bounds {
  timeout?: number | undefined;
  signal?: AbortSignal | undefined;
}

interface Entry<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
  /** Woken, failed, or left (its timeout or signal): skipped where it still sits in the queue. */
  done?: boolean;
}

/**
 * Callers waiting for one thing (a drain, an unblock, the end of a recovery, room in the confirm
 * window...), woken in the order they came or failed together. A bounded waiter leaves when its
 * timeout or signal ends its wait; its slot stays in the queue, skipped, until the leavers
 * outnumber those still waiting (a Set would make waking the oldest cost every leaver before it).
 */
export class Waiters<T = void> {
  private readonly queue = new Queue<Entry<T>>();
  private live = 0;

  get size(): number {
    return this.live;
  }

  /**
   * Wait for the next wake or fail; `what` names the wait in a TimeoutError or AbortError.
   * `onWake`, when given, runs synchronously at the wake, in the waiters' order, and the promise
   * takes its result: what must happen in order (stopped publishes) happens in order.
   */
  wait(what: string, bounds?: Bounds): Promise<T>;
  wait<R>(what: string, bounds: Bounds | undefined, onWake: (value: T) => R | PromiseLike<R>): Promise<R>;
  wait<R>(what: string, bounds?: Bounds, onWake?: (value: T) => R | PromiseLike<R>): Promise<R> {
    const signal = bounds?.signal;
    const timeout = bounds?.timeout;
    if (signal?.aborted) return Promise.reject(new AbortError(`${what} aborted`));
    return new Promise<R>((resolve, reject) => {
      const wake =
        onWake === undefined ? (resolve as unknown as (v: T) => void) : (v: T) => run(onWake, v, resolve, reject);
      if (signal === undefined && timeout === undefined) return this.add({ resolve: wake, reject });
      const entry: Entry<T> = {
        resolve: (v) => (unwatch(), wake(v)),
        reject: (e) => (unwatch(), reject(e)),
      };
      const unwatch = watch({ signal, timeout }, what, (e) => {
        this.take(entry);
        // Drop the slots of waiters that left, once they outnumber those still waiting (and a thousand).
        if (this.queue.length > 2 * this.live + 1024) this.queue.retain((e) => !e.done);
        entry.reject(e);
      });
      this.add(entry);
    });
  }

  /** Wake the longest-waiting caller; false when nobody waits. */
  wakeOne(value: T): boolean {
    for (let e = this.queue.shift(); e !== undefined; e = this.queue.shift()) {
      if (e.done) continue;
      this.take(e);
      e.resolve(value);
      return true;
    }
    return false;
  }

  /** Wake everyone waiting now, in the order they came (not those a wake-up adds). */
  wake(value: T): void {
    for (const e of this.takeAll()) e.resolve(value);
  }

  fail(err: unknown): void {
    for (const e of this.takeAll()) e.reject(err);
  }

  private add(entry: Entry<T>): void {
    this.queue.push(entry);
    this.live++;
  }

  /** Out of the count; its slot in the queue is skipped. */
  private take(entry: Entry<T>): void {
    if (entry.done) return;
    entry.done = true;
    this.live--;
  }

  private takeAll(): Entry<T>[] {
    if (this.live === 0) return [];
    const all = this.queue.drain().filter((e) => !e.done);
    for (const e of all) this.take(e);
    return all;
  }
}

function run<T, R>(
  fn: (v: T) => R | PromiseLike<R>,
  v: T,
  resolve: (r: R | PromiseLike<R>) => void,
  reject: (e: unknown) => void,
): void {
  try {
    resolve(fn(v));
  } catch (e) {
    reject(e);
  }
}

/** Any thenable, not only this realm's Promise (a vm context's, a test environment's). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === "object" || typeof v === "function") &&
    v !== null &&
    typeof (v as { then?: unknown }).then === "function"
  );
}

/**
 * Stop waiting for `p` after `bounds.timeout` ms or when `bounds.signal` aborts. `p` itself goes
 * on and ends unobserved (never as an unhandled rejection).
 */
export function bounded<T>(p: Promise<T>, bounds: Bounds, what: string): Promise<T> {
  const { timeout, signal } = bounds;
  if (signal?.aborted) {
    p.catch(() => undefined);
    return Promise.reject(new AbortError(`${what} aborted`));
  }
  return new Promise<T>((resolve, reject) => {
    const unwatch = watch(bounds, what, (err) => {
      p.catch(() => undefined);
      reject(err);
    });
    p.then(
      (v) => (unwatch(), resolve(v)),
      (e: unknown) => (unwatch(), reject(e)),
    );
  });
}

/**
 * The one watch of a bounded wait named `what`: `stop` runs once, with TimeoutError after
 * `bounds.timeout` ms or AbortError when `bounds.signal` aborts, unless the returned function
 * (which clears the timer and the listener) ran first.
 */
function watch(bounds: Bounds, what: string, stop: (err: Error) => void): () => void {
  const { timeout, signal } = bounds;
  let timer: NodeJS.Timeout | undefined;
  const unwatch = () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  };
  const end = (err: Error) => {
    unwatch();
    stop(err);
  };
  const onAbort = () => end(new AbortError(`${what} aborted`));
  if (timeout !== undefined)
    timer = setTimeout(() => end(new TimeoutError(`${what} took longer than ${timeout} ms`)), timeout);
  signal?.addEventListener("abort", onAbort, { once: true });
  return unwatch;
}

/** How retries space themselves out: exponential from `initialDelay`, capped at `maxDelay`, with jitter (0 to 1). */
export interface Backoff {
  initialDelay: number;
  maxDelay: number;
  factor: number;
  jitter: number;
}

/**
 * The delay before attempt n (1-based), drawn from [d * (1 - jitter), d]: many clients cut off
 * together do not all come back in the same instant.
 */
export function backoffDelay(attempt: number, o: Backoff, random = Math.random): number {
  const base = Math.min(o.maxDelay, o.initialDelay * o.factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - o.jitter * random()));
}

/** Resolve after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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
