#!/usr/bin/env node
/**
 * Tutorial 7, Publisher confirms: three ways to know the broker has taken responsibility
 * for what was published, timed side by side (the official tutorial's Java program):
 *
 * 1. individually: publish, then wait for that message's confirm before the next one.
 *    Simple, and slow: every message costs a round trip.
 * 2. in batches of 100: publish a batch, then wait for all of its confirms. Much faster;
 *    but after a nack we only know that something in the batch failed.
 * 3. asynchronously: publish everything, keep the messages not yet confirmed, and forget
 *    each one as its confirm arrives (or report it when it is nacked). Fastest, and it
 *    still knows exactly which messages failed.
 *
 * In confirm mode warren's `publish` resolves when the broker acks the message and
 * rejects with a NackError when it nacks it, so each strategy is a way of awaiting those
 * promises. Each strategy publishes to its own server-named queue on its own channel.
 *
 *   publisher_confirms [count]   (default 50,000 messages per strategy)
 */
import type { Channel } from "../index.js";
import { NackError } from "../index.js";
import { printError, main } from "./run.js";

const BATCH_SIZE = 100;
/** How long one confirm (or one batch of them) may take, as waitForConfirmsOrDie(5_000). */
const CONFIRM_TIMEOUT_MS = 5_000;
/** How long the asynchronous strategy waits for its outstanding confirms. */
const ALL_CONFIRMS_TIMEOUT_MS = 60_000;

function formatted(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** The confirms did not arrive in time (waitForConfirmsOrDie's TimeoutException). */
class ConfirmTimeout extends Error {}

/** Rejects with a ConfirmTimeout if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConfirmTimeout(`${what} not confirmed within ${formatted(ms)} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A channel in confirm mode with a fresh queue; exclusive, so it goes when we disconnect. */
async function confirmingChannel(open: () => Promise<Channel>): Promise<{ ch: Channel; queue: string }> {
  const ch = await open();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  await ch.confirmSelect();
  return { ch, queue };
}

async function publishMessagesIndividually(open: () => Promise<Channel>, count: number): Promise<number> {
  const { ch, queue } = await confirmingChannel(open);
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    await within(ch.publish("", queue, String(i)), CONFIRM_TIMEOUT_MS, `message ${i}`);
  }
  const elapsed = performance.now() - start;
  await ch.close();
  return elapsed;
}

async function publishMessagesInBatch(open: () => Promise<Channel>, count: number): Promise<number> {
  const { ch, queue } = await confirmingChannel(open);
  const start = performance.now();
  let batch: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    batch.push(ch.publish("", queue, String(i)));
    if (batch.length === BATCH_SIZE || i === count - 1) {
      await within(Promise.all(batch), CONFIRM_TIMEOUT_MS, `batch ending with message ${i}`);
      batch = [];
    }
  }
  const elapsed = performance.now() - start;
  await ch.close();
  return elapsed;
}

async function handlePublishConfirmsAsynchronously(open: () => Promise<Channel>, count: number): Promise<number> {
  const { ch, queue } = await confirmingChannel(open);
  // The messages the broker has not confirmed yet, by sequence number.
  const outstandingConfirms = new Map<number, string>();
  let allConfirmed: () => void = () => {};
  let failed: (err: unknown) => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    allConfirmed = resolve;
    failed = reject;
  });

  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const sequenceNumber = i + 1;
    const body = String(i);
    outstandingConfirms.set(sequenceNumber, body);
    ch.publish("", queue, body).then(
      () => {
        outstandingConfirms.delete(sequenceNumber);
        if (outstandingConfirms.size === 0) allConfirmed();
      },
      (err: unknown) => {
        if (!(err instanceof NackError)) return failed(err);
        printError(`Message with body ${body} has been nack-ed. Sequence number: ${sequenceNumber}`);
        outstandingConfirms.delete(sequenceNumber);
        if (outstandingConfirms.size === 0) allConfirmed();
      },
    );
  }
  try {
    await within(done, ALL_CONFIRMS_TIMEOUT_MS, "all messages");
  } catch (err) {
    if (!(err instanceof ConfirmTimeout)) throw err;
    printError("All messages could not be confirmed in 60 seconds");
  }
  const elapsed = performance.now() - start;
  await ch.close();
  return elapsed;
}

main(
  async ({ conn, args, print }) => {
    const count = Number(args[0] ?? 50_000);
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new Error(`the message count must be a positive integer, not "${args[0]}"`);
    }
    const open = () => conn.openChannel();

    let ms = await publishMessagesIndividually(open, count);
    print(`Published ${formatted(count)} messages individually in ${formatted(ms)} ms`);

    ms = await publishMessagesInBatch(open, count);
    print(`Published ${formatted(count)} messages in batch in ${formatted(ms)} ms`);

    ms = await handlePublishConfirmsAsynchronously(open, count);
    print(`Published ${formatted(count)} messages and handled confirms asynchronously in ${formatted(ms)} ms`);
  },
  { usage: "[count]" },
);
