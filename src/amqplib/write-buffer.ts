/**
 * amqplib's channel buffer, as publish's boolean and "drain" show it. In amqplib each channel
 * writes into a stream of its own (object mode, `highWaterMark` writes, default 1024) that the
 * connection's muxer empties into the socket on a later setImmediate, for as long as the socket
 * takes more. A message is one write when it frames to under 2048 bytes, else its method and
 * header and then each body frame. publish returns false once the stream holds
 * 2 * highWaterMark - 1 writes (its writable and readable sides hold highWaterMark each, less
 * the one inside its transform), and "drain" follows when the muxer has emptied it. Every other
 * method the channel sends (declarations, acks) is a write in the same buffer.
 *
 * warren writes to the socket at once; this counts what amqplib would be holding, so that code
 * that publishes until false and then waits for "drain" paces itself as it did, bursts included.
 */
import type { Connection } from "../index.js";

/** What the buffer needs of warren's Connection beyond its public API (internal members). */
export interface Writable {
  /** The socket is over its high-water mark, or the broker has blocked the connection. */
  readonly writeWouldWait: boolean;
  /** Resolves once a write would not wait. */
  writable(): Promise<void>;
}

const DEFAULT_HIGH_WATER_MARK = 1024;
const SINGLE_WRITE = 2048;
/** A frame's header (type, channel, size) and end octet. */
const FRAME_OVERHEAD = 8;

export class WriteBuffer {
  readonly #conn: Connection & Writable;
  readonly #limit: number;
  readonly #drained: () => void;
  /** Writes amqplib would hold now. */
  #writes = 0;
  /** publish() has returned false: "drain" is owed. */
  #full = false;

  constructor(conn: Connection, highWaterMark: number | undefined, drained: () => void) {
    this.#conn = conn as Connection & Writable;
    // amqplib's `highWaterMark || 1024`: 0 is the default too.
    this.#limit = 2 * (highWaterMark || DEFAULT_HIGH_WATER_MARK) - 1;
    this.#drained = drained;
  }

  /**
   * A method was written on the channel, carrying content of `bodySize` bytes if it is a publish:
   * false once amqplib's buffer would be full (what its publish returns).
   */
  write(bodySize?: number): boolean {
    if (this.#writes === 0) setImmediate(() => this.#flush());
    this.#writes += bodySize === undefined ? 1 : this.#writesOf(bodySize);
    if (this.#writes < this.#limit) return true;
    this.#full = true;
    return false;
  }

  #writesOf(bodySize: number): number {
    if (bodySize < SINGLE_WRITE) return 1;
    const frameMax = this.#conn.frameMax;
    return 1 + (frameMax === 0 ? 1 : Math.ceil(bodySize / (frameMax - FRAME_OVERHEAD)));
  }

  /** The muxer's turn: the buffer empties now if the socket takes more, else once it does. */
  #flush(): void {
    if (!this.#conn.writeWouldWait) return this.#empty(true);
    this.#conn.writable().then(
      () => this.#empty(true),
      () => this.#empty(false),
    );
  }

  #empty(writable: boolean): void {
    this.#writes = 0;
    if (!this.#full) return;
    this.#full = false;
    if (writable) this.#drained();
  }
}
