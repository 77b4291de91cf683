/**
 * The consumer timeout warning. RabbitMQ acts on a delivery left unacknowledged past
 * consumer_timeout (the broker's setting, or a queue's x-consumer-timeout): it closes the channel
 * with 406, or cancels a quorum queue's consumer. Told that timeout, a watch warns once per
 * delivery still unsettled at `threshold` ms, in time for the handler to be told. One sweep
 * timer per consumer (unref'd, stopped when nothing is held), not one timer per delivery.
 */
import type { Message } from "./message.js";
import { Queue } from "./queue.js";

interface Held {
  msg: Message;
  at: number;
  warned: boolean;
}

export class HeldWatch {
  private readonly held = new Queue<Held>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly threshold: number,
    private readonly settled: (msg: Message) => boolean,
    private readonly warn: (msg: Message, heldFor: number) => void,
  ) {}

  delivered(msg: Message): void {
    this.trim();
    this.held.push({ msg, at: Date.now(), warned: false });
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), Math.max(10, this.threshold / 4));
      this.timer.unref();
    }
  }

  /** Drop the settled deliveries at the front (deliveries are mostly settled in order). */
  private trim(): void {
    while (this.held.length > 0 && this.settled(this.held.peek()!.msg)) this.held.shift();
  }

  private sweep(): void {
    this.trim();
    const now = Date.now();
    for (const h of this.held) {
      if (now - h.at < this.threshold) break;
      if (!h.warned && !this.settled(h.msg)) {
        h.warned = true;
        this.warn(h.msg, now - h.at);
      }
    }
    if (this.held.length === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.held.clear();
  }
}
