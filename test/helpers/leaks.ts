/**
 * What a fault must not leave behind: an unhandled rejection, a socket or timer that keeps the
 * process alive, a second "close". Shared by the fault tests.
 *
 * Resource counts come from process.getActiveResourcesInfo(), which lists the handles and
 * requests that keep the event loop alive (sockets, servers, ref'ed timers, immediates). A
 * test file's tests run one after another in their own worker, so a count taken before a test
 * and polled after it belongs to that test alone.
 */
import type { EventEmitter } from "node:events";
import { afterAll, afterEach, beforeAll, expect } from "vitest";

/**
 * Install a process "unhandledRejection" listener for the whole file and fail the test in
 * which one fired. Returns the list, for tests that want to look at it themselves.
 */
export function failOnUnhandledRejection(): unknown[] {
  const seen: unknown[] = [];
  const listener = (reason: unknown): void => {
    seen.push(reason);
  };
  beforeAll(() => {
    process.on("unhandledRejection", listener);
  });
  afterEach(async () => {
    // A rejection is reported as unhandled after the microtask queue drains: give it a turn.
    await new Promise((r) => setImmediate(r));
    const fired = seen.splice(0);
    expect(fired, "unhandled rejections").toEqual([]);
  });
  afterAll(() => {
    process.off("unhandledRejection", listener);
  });
  return seen;
}

/** The kinds of resource a connection can leak. */
const KINDS = ["TCPSocketWrap", "TCPServerWrap", "Timeout", "Immediate"] as const;

export type ResourceCounts = Record<(typeof KINDS)[number], number>;

export function resourceCounts(): ResourceCounts {
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as ResourceCounts;
  for (const r of process.getActiveResourcesInfo()) if (r in counts) counts[r as keyof ResourceCounts] += 1;
  return counts;
}

/**
 * Resolves once no kind of resource is above `before`; rejects naming what is still there
 * after `turns` polls (sockets close a few event-loop turns after destroy(), so the count is
 * polled rather than read once). A bound on polls, not a timing assertion.
 */
export async function expectNoLeakedResources(before: ResourceCounts, turns = 200): Promise<void> {
  let now = resourceCounts();
  for (let i = 0; i < turns; i++) {
    if (KINDS.every((k) => now[k] <= before[k])) return;
    await new Promise((r) => setTimeout(r, 10));
    now = resourceCounts();
  }
  expect(now, "active resources after the test").toEqual(before);
}

/** Records every "close" an emitter emits (its argument), to assert it came exactly once. */
export function recordCloses(emitter: EventEmitter): unknown[] {
  const closes: unknown[] = [];
  emitter.on("close", (err: unknown) => closes.push(err));
  return closes;
}

/** The settled outcome of a promise, without a throw. */
export async function settled<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}
