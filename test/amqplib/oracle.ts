/**
 * What the differential tests of warren/amqplib observe and how they log it: an error as code
 * that matches on it sees it, a message as it stays the same from one run to the next, events
 * in order. Each test runs the same program with amqplib and with warren/amqplib and compares.
 */
import type * as amqplib from "amqplib";

export type Lib = Pick<typeof amqplib, "connect">;
export type Log = unknown[];

/** What an error shows code that matches on it. */
export function err(e: unknown) {
  const x = e as Error & { code?: unknown; classId?: unknown; methodId?: unknown };
  return { name: x.name, message: x.message, code: x.code, classId: x.classId, methodId: x.methodId };
}

export async function attempt<T>(log: Log, what: string, run: () => Promise<T> | T): Promise<T | undefined> {
  try {
    const r = await run();
    log.push([what, "ok", r]);
    return r;
  } catch (e) {
    log.push([what, "error", err(e)]);
    return undefined;
  }
}

/** A message as amqplib hands it out, the parts that stay the same from one run to the next. */
export function message(m: amqplib.Message | false | null) {
  if (m === false || m === null) return m;
  return { content: m.content.toString(), fields: m.fields, properties: m.properties };
}

export function watch(log: Log, name: string, emitter: NodeJS.EventEmitter, events: string[]) {
  for (const event of events)
    emitter.on(event, (...args: unknown[]) =>
      log.push([
        `${name} event`,
        event,
        ...args.map((a) =>
          a instanceof Error
            ? err(a)
            : a && typeof a === "object" && "content" in a
              ? message(a as amqplib.Message)
              : a,
        ),
      ]),
    );
}

export const tick = (ms = 50) => new Promise((r) => setTimeout(r, ms));

export async function until(done: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await tick(10);
}

/** The queue's message count once it reaches `n`, polled every 50 ms (5 s at most: then what it holds). */
export async function countReaching(
  ch: { checkQueue(queue: string): Promise<{ messageCount: number }> },
  queue: string,
  n: number,
): Promise<number> {
  let count = 0;
  for (let i = 0; i < 100 && count < n; i++) {
    count = (await ch.checkQueue(queue)).messageCount;
    if (count < n) await tick(50);
  }
  return count;
}
