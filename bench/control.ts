/**
 * The harness's own connection to the broker (warren, in every child alike): declares and
 * deletes the benchmark's queues, pre-fills queues for the consume scenarios, and polls a
 * queue's message count with a passive queue.declare -- the broker holding every message is
 * the end of a publish run, not publish() returning.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Channel, Connection } from "../src/index.js";
import { loadWarren } from "./warren-dist.js";

export class Control {
  private constructor(
    readonly conn: Connection,
    readonly ch: Channel,
  ) {}

  static async open(url: string): Promise<Control> {
    // Loaded here, not at import: run.ts imports the scenarios (and this) before it builds dist/.
    const { connect } = await loadWarren();
    const conn = await connect({ url, connectionName: "bench-control" });
    return new Control(conn, await conn.openChannel());
  }

  /** A fresh classic queue; it expires by itself if a crashed run leaves it behind. */
  async queue(tag: string): Promise<string> {
    const name = `bench-${tag}-${randomUUID().slice(0, 8)}`;
    await this.ch.queueDeclare(name, { arguments: { "x-expires": 600_000 } });
    return name;
  }

  async count(queue: string): Promise<number> {
    return (await this.ch.queueDeclare(queue, { passive: true })).messageCount;
  }

  /** Poll every 2 ms until the queue holds n messages. */
  async waitForCount(queue: string, n: number, timeoutMs = 300_000, onPoll?: () => void): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const c = await this.count(queue);
      onPoll?.();
      if (c >= n) return;
      if (Date.now() > deadline) throw new Error(`queue ${queue} holds ${c} of ${n} messages after ${timeoutMs} ms`);
      await sleep(2);
    }
  }

  async fill(queue: string, body: Buffer, n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.ch.publish("", queue, body);
    await this.waitForCount(queue, n);
  }

  async delete(queue: string): Promise<void> {
    await this.ch.queueDelete(queue).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}
