/**
 * What a benchmark needs from a client. Each adapter drives its library the way that library's
 * own documentation suggests (its backpressure idiom, its ack call), so the figures are what a
 * user of that library would see. Every publish goes to the default exchange, routing key =
 * queue name, with no properties, unless the library adds its own (rabbitmq-client adds a
 * timestamp and delivery mode).
 */
export interface ConnectOpts {
  url: string;
  /** undefined: the library's default socket options; true: TCP_NODELAY forced on. */
  noDelay?: boolean | undefined;
}

export interface BenchClient {
  readonly name: string;
  /** n publishes with the library's flow control; resolves when all are handed to the library. `probe` is called every 1024 publishes (memory sampling). */
  publish(queue: string, body: Buffer, n: number, probe?: () => void): Promise<void>;
  /**
   * n publishes in confirm mode with at most `window` unconfirmed; resolves when all are
   * confirmed. The library's fastest way: a promise or callback per publish for the peers (they
   * have no other), publishBatch for warren.
   */
  publishConfirmed(queue: string, body: Buffer, n: number, window: number): Promise<void>;
  /** The same as most code writes it: one promise (or callback) per publish, at most `window` waiting. */
  publishConfirmedEach(queue: string, body: Buffer, n: number, window: number): Promise<void>;
  /** The naive publisher: a synchronous loop of n publishes awaiting nothing. Resolves when the library says all are written (if it can say). */
  naive(queue: string, body: Buffer, n: number, probe?: () => void): Promise<void>;
  /** Consume n messages from a pre-filled queue, handled as `handling` says; resolves after the n-th, consumer cancelled. */
  consume(queue: string, n: number, options: { handling: Handling; prefetch: number }): Promise<void>;
  /** Start a noAck consumer handing each body to onMessage. */
  subscribe(queue: string, onMessage: (body: Uint8Array) => void): Promise<void>;
  /** One fire-and-forget publish (latency scenario). */
  send(exchange: string, routingKey: string, body: Buffer): void;
  close(): Promise<void>;
}

/**
 * How a consumer handles each delivery: noAck; a callback that acks it (warren: `msg.ack()`);
 * an async handler, acked once it has returned (warren: `settle: "auto"` with at most
 * `concurrency` running; the peers, which bound nothing but the prefetch, ack after an await).
 */
export type Handling = { kind: "noack" } | { kind: "ack" } | { kind: "async"; concurrency: number };

export type ClientFactory = (opts: ConnectOpts) => Promise<BenchClient>;

export const PROBE_EVERY = 1024;

/**
 * Keep at most `window` operations outstanding; `start(i, done)` begins operation i and calls
 * done() when it completes. Shared by every client's confirm scenario so the pipelining is the
 * same for all.
 */
export function windowed(
  n: number,
  window: number,
  start: (i: number, done: (err?: unknown) => void) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let started = 0;
    let finished = 0;
    let failed = false;
    const done = (err?: unknown) => {
      if (failed) return;
      if (err) {
        failed = true;
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      finished++;
      if (finished === n) resolve();
      else if (started < n) pump();
    };
    const pump = () => {
      while (started < n && started - finished < window) start(started++, done);
    };
    if (n === 0) resolve();
    else pump();
  });
}

/**
 * The publish loop of the clients whose publish returns a promise per message and has no other
 * backpressure (cloudamqp, rabbitmq-client): await them in batches of 1000, so memory stays
 * bounded without a round trip per message. Shared so both peers are driven alike.
 */
export async function publishInBatches(n: number, send: () => Promise<unknown>, probe?: () => void): Promise<void> {
  let batch: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    batch.push(send());
    if (batch.length === 1000) {
      await Promise.all(batch);
      batch = [];
    }
    if (probe && (i & (PROBE_EVERY - 1)) === 0) probe();
  }
  await Promise.all(batch);
}

/** Resolves when `count` reaches n; used by consumers. */
export function counter(n: number): { hit: () => void; done: Promise<void> } {
  let c = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    hit: () => {
      if (++c === n) resolve();
    },
    done,
  };
}
