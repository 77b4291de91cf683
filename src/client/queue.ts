/**
 * The client's one FIFO: push at the tail, take from the head in O(1), whatever the length.
 * Array.shift moves every element left behind the first, so a queue thousands long (a consumer's
 * buffer, a confirm window, the waiters of a drain) would cost its length per take. Here the
 * head is an index; the taken slots are cut off once they are most of the array, so the memory
 * held follows what is queued.
 */

/** Taken slots are cut off once there are this many and they are at least half of the array. */
const COMPACT_AT = 1024;

export class Queue<T> implements Iterable<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.items[this.head];
  }

  /** The item `i` places behind the head (0: the oldest). */
  at(i: number): T | undefined {
    return i >= 0 ? this.items[this.head + i] : undefined;
  }

  /** Replace the item `i` places behind the head (a hole, for a window whose items settle out of order). */
  set(i: number, item: T): void {
    if (i >= 0 && i < this.length) this.items[this.head + i] = item;
  }

  /** Take the oldest item. */
  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    this.taken();
    return item;
  }

  /** Drop the `n` oldest items (at most all of them). */
  skip(n: number): void {
    const end = Math.min(this.items.length, this.head + n);
    this.items.fill(undefined, this.head, end);
    this.head = end;
    this.taken();
  }

  /** After a take: empty, the array is reused; mostly taken, it is cut down. */
  private taken(): void {
    if (this.head === this.items.length) this.clear();
    else if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) this.compact();
  }

  /** Take a given item from wherever it is (O(n): for the rare leaver, not the common path). */
  remove(item: T): boolean {
    const i = this.items.indexOf(item, this.head);
    if (i < 0) return false;
    this.items.splice(i, 1);
    return true;
  }

  /** Keep only the items `keep` accepts, in order. */
  retain(keep: (item: T) => boolean): void {
    this.items = (this.items.slice(this.head) as T[]).filter(keep);
    this.head = 0;
  }

  /** Take every item, in order. */
  drain(): T[] {
    const all = this.items.slice(this.head) as T[];
    this.clear();
    return all;
  }

  clear(): void {
    // Emptied in place: a queue that empties after every item (a consumer keeping up) allocates nothing.
    this.items.length = 0;
    this.head = 0;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!;
  }

  private compact(): void {
    this.items = this.items.slice(this.head);
    this.head = 0;
  }
}
