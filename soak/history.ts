/**
 * The soak's history: every operation and fault, in the order it happened, one JSON object per
 * line in a file and kept in memory for the checker. Times are milliseconds since the start.
 */
import { createWriteStream, type WriteStream } from "node:fs";

/** The three consumers, one per queue the exchange fans out to. */
export type ConsumerName = "callback" | "iterator" | "stream";
export const CONSUMERS: readonly ConsumerName[] = ["callback", "iterator", "stream"];

export type FaultKind = "kill" | "close" | "alarm" | "partition" | "reset" | "blackhole" | "delay";

export type Event =
  | { t: number; k: "sent"; id: string }
  | { t: number; k: "confirmed"; id: string }
  | { t: number; k: "nacked"; id: string }
  | { t: number; k: "rejected"; id: string; error: string }
  | { t: number; k: "delivered"; c: ConsumerName; id: string; redelivered: boolean; offset?: number }
  | { t: number; k: "acked"; c: ConsumerName; id: string }
  /** `error`: injecting or undoing the fault failed (a rabbitmqctl that timed out): the run goes on. */
  | { t: number; k: "fault"; kind: FaultKind; target: string; phase: "start" | "end"; error?: string }
  | { t: number; k: "client"; who: string; what: string; detail?: string }
  | { t: number; k: "unhandled"; error: string }
  | { t: number; k: "memory"; when: "start" | "end"; rss: number; heapUsed: number }
  /** Publishing stopped (the end of the measured span), and the drain's end. */
  | { t: number; k: "stopped" }
  | { t: number; k: "drained"; complete: boolean }
  /** Something the run waited for did not come (a close, a publish settling). */
  | { t: number; k: "hang"; what: string };

/** An event as recorded, before its time is stamped. */
type Unstamped<E> = E extends Event ? Omit<E, "t"> : never;

export class History {
  readonly events: Event[] = [];
  private readonly started = performance.now();
  private readonly file: WriteStream | undefined;

  constructor(path?: string) {
    this.file = path === undefined ? undefined : createWriteStream(path);
  }

  now(): number {
    return Math.round(performance.now() - this.started);
  }

  record(event: Unstamped<Event>): void {
    const stamped = { t: this.now(), ...event } as Event;
    this.events.push(stamped);
    this.file?.write(`${JSON.stringify(stamped)}\n`);
  }

  async close(): Promise<void> {
    const file = this.file;
    if (file !== undefined)
      await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

/** Reads a history file back. */
export function parseHistory(text: string): Event[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Event);
}
