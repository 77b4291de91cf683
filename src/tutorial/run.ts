/**
 * What every tutorial program shares, so that each of them reads like the tutorial text
 * and nothing else: connecting to AMQP_URL, `--trace`, Ctrl-C, and failing with one line.
 *
 *   main(async ({ ch, args, print, untilStopped }) => { ...the tutorial... });
 *
 * - The connection URL comes from AMQP_URL (default amqp://localhost, guest/guest).
 * - `--trace` (anywhere in the arguments) prints every frame sent (->) and received (<-),
 *   decoded by `describeFrame`, to stderr. The frames come from node:diagnostics_channel,
 *   so a program that does not trace pays nothing for it.
 * - SIGINT (Ctrl-C) and SIGTERM close the connection, and with it the channel, then exit 0.
 *   The broker deletes a program's exclusive queues when its connection closes. On SIGTERM (a
 *   service manager's stop), consumers with a handler running first stop taking deliveries and
 *   let it finish and ack (connection.close() drains them); Ctrl-C stops at once, as in the
 *   tutorials. A program whose official version prints "Interrupted" on Ctrl-C does too
 *   (`onInterrupt`).
 * - A failure (broker unreachable, login refused, a declare the broker refuses, a
 *   connection closed under us) prints one line to stderr and exits 1. With --trace the
 *   stack follows that line.
 * - Output goes to fd 1 with synchronous writes: when stdout is a file or a pipe, Node's
 *   process.stdout may buffer or write asynchronously, and `receive_logs > file` must show
 *   each log as it arrives, not when the program ends.
 */
import { subscribe } from "node:diagnostics_channel";
import { writeSync } from "node:fs";
import { basename, extname } from "node:path";
import { connect, describeFrame, redactUrl } from "../index.js";
import type { Channel, Connection } from "../index.js";
import { describeError } from "./errors.js";

export interface Context {
  /** The open connection to AMQP_URL. */
  readonly conn: Connection;
  /** A channel opened on `conn`, closed by `main` on exit. */
  readonly ch: Channel;
  /** The program's arguments, without `--trace`. */
  readonly args: readonly string[];
  /** Writes one line to stdout, synchronously (see the note at the top of this file). */
  print(line: string): void;
  /**
   * Resolves when the user asks the program to stop (SIGINT, SIGTERM, stdout closed).
   * Consumers await it after they subscribe, where the Python tutorials call
   * start_consuming(). If the broker closes the connection or the channel first, the
   * program fails with the broker's reason instead.
   */
  untilStopped(): Promise<void>;
}

export interface Options {
  /** The argument synopsis printed as `Usage: <program> <usage>` when `minArgs` is not met. */
  usage?: string;
  /** The fewest arguments the program runs with; fewer print the usage line and exit 1. */
  minArgs?: number;
  /** Printed on Ctrl-C (SIGINT) before the program exits 0, as the official program prints it. */
  onInterrupt?: string;
}

/** How long closing may take before the program exits anyway. */
const CLOSE_TIMEOUT_MS = 2000;
/** How long SIGTERM lets running handlers finish (a service manager's usual grace period; the connection's default timeout). */
const FINISH_TIMEOUT_MS = 30_000;

/** The name the user ran the program by: `receive_logs` or the bin `warren-receive-logs`. */
export const programName = basename(process.argv[1] ?? "tutorial", extname(process.argv[1] ?? ""));

/** Writes `text` to a file descriptor completely, waiting out EAGAIN on a full non-blocking pipe. */
function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let offset = 0;
  while (offset < buf.length) {
    try {
      offset += writeSync(fd, buf, offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

/** Writes one line to stderr; never throws (there is nowhere left to report to). */
export function printError(line: string): void {
  try {
    writeAll(2, `${line}\n`);
  } catch {
    // stderr is gone: nothing to do.
  }
}

function trace(): void {
  subscribe("warren:frame:out", (message) => {
    printError(`-> ${describeFrame((message as { frame: Parameters<typeof describeFrame>[0] }).frame)}`);
  });
  subscribe("warren:frame:in", (message) => {
    printError(`<- ${describeFrame((message as { frame: Parameters<typeof describeFrame>[0] }).frame)}`);
  });
}

/** Runs a tutorial program: see the top of this file for what it takes care of. */
export function main(program: (ctx: Context) => Promise<void>, options: Options = {}): void {
  const argv = process.argv.slice(2);
  const tracing = argv.includes("--trace");
  const args = argv.filter((arg) => arg !== "--trace");
  const url = process.env["AMQP_URL"] || "amqp://localhost";

  if (args.length < (options.minArgs ?? 0)) {
    printError(`Usage: ${programName} ${options.usage ?? ""}`.trimEnd());
    process.exit(1);
  }
  if (tracing) trace();

  let conn: Connection | undefined;
  let ch: Channel | undefined;
  let exiting = false;
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stopRequested = resolve;
  });

  /**
   * Closes the connection, and with it the channel, then exits; the first call wins. With
   * `drain` (SIGTERM), running handlers finish first; otherwise (Ctrl-C, a failure) the broker
   * requeues what they hold.
   */
  const exit = async (code: number, drain = false): Promise<never> => {
    if (!exiting) {
      exiting = true;
      const timer = setTimeout(() => process.exit(code), CLOSE_TIMEOUT_MS + (drain ? FINISH_TIMEOUT_MS : 0));
      try {
        await conn?.close({ drain });
      } catch {
        // Already closed: nothing left to release.
      }
      clearTimeout(timer);
      process.exit(code);
    }
    // Another exit is under way; it ends the process.
    return new Promise<never>(() => {});
  };

  const fail = (err: unknown): Promise<never> => {
    if (exiting) return new Promise<never>(() => {});
    printError(`${programName}: ${describeError(err, redactUrl(url), conn !== undefined)}`);
    if (tracing && err instanceof Error && err.stack) printError(err.stack);
    return exit(1);
  };

  const stop = (drain = false): void => {
    if (exiting) process.exit(0); // a second Ctrl-C or SIGTERM: do not wait for the broker
    stopRequested();
    void exit(0, drain);
  };
  process.on("SIGINT", () => {
    // The official consumers catch KeyboardInterrupt and print "Interrupted" before exiting 0.
    if (!exiting && options.onInterrupt !== undefined) print(options.onInterrupt);
    stop();
  });
  process.on("SIGTERM", () => stop(true));

  const print = (line: string): void => {
    try {
      writeAll(1, `${line}\n`);
    } catch (err) {
      // The reader of our pipe went away (`receive_logs | head -1`): stop like Ctrl-C.
      if ((err as NodeJS.ErrnoException).code === "EPIPE") stop();
      else throw err;
    }
  };

  const run = async (): Promise<void> => {
    conn = await connect(url);
    conn.on("close", (err) => {
      if (!exiting) void fail(err ?? new Error("the broker closed the connection"));
    });
    ch = await conn.openChannel();
    ch.on("close", (err) => {
      if (!exiting) void fail(err ?? new Error("the broker closed the channel"));
    });
    await program({ conn, ch, args, print, untilStopped: () => stopped });
    await exit(0);
  };
  run().catch(fail);
}
