/**
 * A connection's channels by id, 1 to the negotiated channel_max (spec 4.2.3: channel 0 is the
 * connection's own), and the choice of a free id for a new one: round-robin from the last one
 * given out, so an id just freed is not reused at once while the broker may still send on it.
 */
import { AmqpError } from "./errors.js";

export class ChannelTable<C> {
  private readonly slots: (C | undefined)[] = [];
  private hint = 1;

  get(id: number): C | undefined {
    return this.slots[id];
  }

  /** A free id, from 1 to `max`; an AmqpError when every one is taken. */
  allocate(max: number): number {
    for (let i = 0; i < max; i++) {
      const id = ((this.hint - 1 + i) % max) + 1;
      if (this.slots[id] === undefined) {
        this.hint = (id % max) + 1;
        return id;
      }
    }
    // Not a ConnectionClosedError: the connection is fine, and a channel closed later frees an id.
    throw new AmqpError(`all ${max} channels are in use (channel_max ${max} was negotiated); close one first`);
  }

  set(id: number, channel: C): void {
    this.slots[id] = channel;
  }

  free(id: number): void {
    this.slots[id] = undefined;
  }

  /** The channels, in id order. */
  values(): C[] {
    return this.slots.filter((c): c is C => c !== undefined);
  }

  get size(): number {
    return this.values().length;
  }

  clear(): void {
    this.slots.length = 0;
  }
}
