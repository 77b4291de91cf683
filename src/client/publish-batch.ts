/**
 * publishBatch(): many publishes, one promise. The messages go out exactly as publish() would
 * send them one by one (the protocol has no batch: RabbitMQ numbers and confirms them one by
 * one), but nothing is made per message that the caller would only wait on: in confirm mode each
 * takes one small entry in the confirm window, and its ack or nack settles its place in the
 * batch. The batch settles once every message has: it resolves if all went out (in confirm
 * mode, were acked), else rejects with PublishBatchError naming each failure by its index.
 */
import type { PublishOptions } from "./channel-options.js";
import type { Published, Unconfirmed } from "./confirms.js";
import { PublishBatchError, type ReturnedError } from "./errors.js";

/** One message of a batch: publish()'s arguments. */
export interface Publication {
  exchange: string;
  routingKey: string;
  body: string | Uint8Array;
  options?: PublishOptions;
}

/** @internal What a batch's messages settle, one by one, into its one promise. */
export class BatchOutcome {
  private left: number;
  private readonly failures: { index: number; error: unknown }[] = [];
  private resolve!: () => void;
  private reject!: (e: unknown) => void;
  readonly done = new Promise<void>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });

  constructor(private readonly size: number) {
    this.left = size;
    if (size === 0) this.resolve();
  }

  /** A message went out (in confirm mode: was acked). */
  sent(): void {
    this.settled();
  }

  /** Message `index` failed with `error`. */
  failed(index: number, error: unknown): void {
    this.failures.push({ index, error });
    this.settled();
  }

  private settled(): void {
    if (--this.left > 0) return;
    if (this.failures.length === 0) return this.resolve();
    this.failures.sort((a, b) => a.index - b.index);
    this.reject(new PublishBatchError(this.failures, this.size));
  }

  /** Message `index` went the way of publish(): its promise settles it. */
  follow(index: number, published: Promise<void>): void {
    published.then(
      () => this.sent(),
      (e: unknown) => this.failed(index, e),
    );
  }

  /** Messages `from` and on were never sent: each fails with `error`. */
  failFrom(from: number, error: unknown): void {
    for (let i = from; i < this.size; i++) this.failed(i, error);
  }
}

/** @internal A message of a batch in the confirm window: its ack or nack settles it. */
export class BatchEntry implements Unconfirmed {
  returned?: ReturnedError;
  constructor(
    private readonly outcome: BatchOutcome,
    private readonly index: number,
    readonly republish: (() => Promise<void>) | undefined,
    readonly mandatory: Published | undefined,
  ) {}

  resolve(): void {
    this.outcome.sent();
  }

  reject(e: unknown): void {
    this.outcome.failed(this.index, e);
  }
}
