/**
 * The tutorial programs as real processes, for the tutorial tests: `node --import tsx
 * src/tutorial/<program>.ts`, with AMQP_URL pointing at the test broker.
 *
 * Waits are bounded (a program that never prints what we wait for fails the test with its
 * output so far) but never measured: no test asserts how long anything took.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as amqplib from "amqplib";
import { afterAll, afterEach, beforeAll } from "vitest";
import { getBrokerUrl, rabbitmqctl, uniqueName } from "../helpers/broker.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** How long any one wait may take before the test fails with what the program printed. */
const WAIT_MS = 20_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string[];
  stderr: string;
}

const alive = new Set<Program>();

/** The URL of this test file's own virtual host, once useOwnVhost() has made it. */
let ownVhostUrl: string | undefined;

/**
 * The broker URL the tutorial programs of this test file run against: its own virtual host
 * when the file called useOwnVhost(), else the test broker's.
 */
export async function tutorialUrl(): Promise<string> {
  return ownVhostUrl ?? getBrokerUrl();
}

/**
 * Gives the calling test file a virtual host of its own for the whole file, made before its
 * tests and deleted after them (with everything in it). The tutorials use fixed names
 * (`logs`, `hello`, `task_queue`, `rpc_queue`), so without this, another test file, another
 * test run, or a `npm run demo` on the same broker would see this file's messages.
 */
export function useOwnVhost(label: string): void {
  const vhost = uniqueName(`warren-tutorial-${label}`);
  beforeAll(async () => {
    const url = new URL(await getBrokerUrl());
    await rabbitmqctl(["add_vhost", vhost]);
    await rabbitmqctl(["set_permissions", "-p", vhost, decodeURIComponent(url.username || "guest"), ".*", ".*", ".*"]);
    url.pathname = `/${encodeURIComponent(vhost)}`;
    ownVhostUrl = url.toString();
  });
  afterAll(async () => {
    ownVhostUrl = undefined;
    await rabbitmqctl(["delete_vhost", vhost]);
  });
}

export class Program {
  /** Complete stdout lines, in order, as they arrived. */
  readonly lines: string[] = [];
  stderr = "";
  readonly exited: Promise<Exit>;
  readonly child: ChildProcess;
  private partial = "";
  private waiters = new Set<() => void>();

  /**
   * Runs `command` (by default the program from source: node --import tsx
   * src/tutorial/<name>.ts) with `args`.
   */
  constructor(
    readonly name: string,
    readonly args: string[],
    env: NodeJS.ProcessEnv,
    stdout: "pipe" | number = "pipe",
    command: readonly [string, ...string[]] = [process.execPath, "--import", "tsx", `src/tutorial/${name}.ts`],
  ) {
    this.child = spawn(command[0], [...command.slice(1), ...args], {
      cwd: ROOT,
      env,
      stdio: ["ignore", stdout, "pipe"],
    });
    alive.add(this);
    this.child.stdout?.setEncoding("utf8");
    this.child.stdout?.on("data", (chunk: string) => {
      const parts = (this.partial + chunk).split("\n");
      this.partial = parts.pop() ?? "";
      this.lines.push(...parts);
      this.wake();
    });
    this.child.stderr?.setEncoding("utf8");
    this.child.stderr?.on("data", (chunk: string) => {
      this.stderr += chunk;
      this.wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code, signal) => {
        alive.delete(this);
        if (this.partial !== "") this.lines.push(this.partial);
        this.partial = "";
        resolve({ code, signal, stdout: this.lines, stderr: this.stderr });
        this.wake();
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /**
   * Resolves once `done()` holds, re-checked on every chunk of output. Rejects if the
   * program exits first, or after WAIT_MS, with its output so far.
   */
  async until(what: string, done: () => boolean): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!done()) {
      if (!this.running) {
        throw new Error(`${this.describe()} exited (code ${this.child.exitCode}) before ${what}\n${this.output()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.describe()}: no ${what} within ${WAIT_MS} ms\n${this.output()}`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  /** Waits for a stdout line equal to `line` (or matching it), and returns it. */
  async line(line: string | RegExp): Promise<string> {
    const find = (): string | undefined =>
      this.lines.find((l) => (typeof line === "string" ? l === line : line.test(l)));
    await this.until(`line ${String(line)}`, () => find() !== undefined);
    return find() as string;
  }

  /** Waits for the receivers' and workers' " [*] Waiting for ..." line. */
  ready(): Promise<string> {
    return this.line(/^ \[[*x]\] (Waiting for|Awaiting)/);
  }

  /** Sends `signal` (SIGINT, as Ctrl-C does, by default) and waits for the exit. */
  async stop(signal: NodeJS.Signals = "SIGINT"): Promise<Exit> {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }

  describe(): string {
    return [this.name, ...this.args].join(" ");
  }

  output(): string {
    return `--- stdout:\n${[...this.lines, this.partial].join("\n")}\n--- stderr:\n${this.stderr}`;
  }
}

/**
 * Starts a tutorial program against the test broker (or `env.AMQP_URL`). Its stdout is a
 * pipe read into `lines`, or the file descriptor `stdout` (a file the test opened).
 */
export async function start(
  name: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  stdout: "pipe" | number = "pipe",
): Promise<Program> {
  const url = await tutorialUrl();
  return new Program(name, args, { ...process.env, AMQP_URL: url, ...env }, stdout);
}

/** Runs a tutorial program to its end. */
export async function run(name: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  const program = await start(name, args, env);
  const timer = setTimeout(() => program.child.kill("SIGKILL"), WAIT_MS * 2);
  try {
    return await program.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a program that must succeed, and returns its stdout lines. */
export async function ok(name: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const exit = await run(name, args, env);
  if (exit.code !== 0) {
    throw new Error(`${name} ${args.join(" ")} exited with ${exit.code ?? exit.signal}\n${exit.stderr}`);
  }
  return exit.stdout;
}

/** The server-named queue a program declared, read from its --trace output. */
export function tracedQueue(program: Program): string {
  const match = /queue\.declare-ok \{queue: "([^"]+)"/.exec(program.stderr);
  if (!match?.[1]) throw new Error(`no queue.declare-ok in the trace of ${program.describe()}\n${program.output()}`);
  return match[1];
}

/**
 * Whether `queue` exists, by a passive declare from amqplib (an independent client): the
 * broker answers a missing queue with channel.close 404.
 */
export async function queueExists(queue: string): Promise<boolean> {
  const conn = await amqplib.connect(await tutorialUrl());
  try {
    const ch = await conn.createChannel();
    ch.on("error", () => {});
    try {
      await ch.checkQueue(queue);
      await ch.close();
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return false;
      // 405 RESOURCE_LOCKED: it exists, exclusive to the connection of the program that made it.
      if ((err as { code?: number }).code === 405) return true;
      throw err;
    }
  } finally {
    await conn.close();
  }
}

/**
 * The queues bound to `exchange`, as `rabbitmqctl list_bindings` shows them (in the test
 * broker's virtual host): what the tutorial tells the learner to look at.
 */
export async function boundQueues(exchange: string): Promise<string[]> {
  const vhost = decodeURIComponent(new URL(await tutorialUrl()).pathname.slice(1)) || "/";
  const out = await rabbitmqctl([
    "-q",
    "list_bindings",
    "-p",
    vhost,
    "source_name",
    "destination_name",
    "destination_kind",
  ]);
  return out
    .split("\n")
    .map((line) => line.split("\t"))
    .filter(([source, , kind]) => source === exchange && kind === "queue")
    .map(([, destination]) => destination ?? "");
}

/**
 * Publishes `logs` ([routing key, text]) to `exchange` from amqplib (an independent client),
 * declaring the exchange as the tutorial's programs do, and waits for the broker's confirms.
 */
export async function publishFromAmqplib(
  exchange: string,
  type: "direct" | "topic",
  logs: readonly (readonly [string, string])[],
): Promise<void> {
  const conn = await amqplib.connect(await tutorialUrl());
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange(exchange, type, { durable: false });
    for (const [key, text] of logs) ch.publish(exchange, key, Buffer.from(text));
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

/**
 * Binds an exclusive queue to `exchange` with `bindingKey` from amqplib, runs `emit`, and
 * returns the first `count` deliveries as [exchange, routing key, body text], in arrival order.
 */
export async function receiveInAmqplib(
  exchange: string,
  type: "direct" | "topic",
  bindingKey: string,
  count: number,
  emit: () => Promise<void>,
): Promise<[string, string, string][]> {
  const conn = await amqplib.connect(await tutorialUrl());
  try {
    const ch = await conn.createChannel();
    await ch.assertExchange(exchange, type, { durable: false });
    const { queue } = await ch.assertQueue("", { exclusive: true });
    await ch.bindQueue(queue, exchange, bindingKey);
    const received: [string, string, string][] = [];
    let gotAll: () => void = () => {};
    const all = new Promise<void>((resolve) => (gotAll = resolve));
    await ch.consume(
      queue,
      (msg) => {
        if (msg) received.push([msg.fields.exchange, msg.fields.routingKey, msg.content.toString("utf8")]);
        if (received.length === count) gotAll();
      },
      { noAck: true },
    );
    await emit();
    await all;
    return received;
  } finally {
    await conn.close();
  }
}

/**
 * Deletes a named tutorial queue (hello, task_queue, rpc_queue) and what it held from
 * earlier runs; the programs declare it again as the tutorial does.
 */
export async function deleteQueue(queue: string): Promise<void> {
  const conn = await amqplib.connect(await tutorialUrl());
  try {
    const ch = await conn.createChannel();
    await ch.deleteQueue(queue);
    await ch.close();
  } finally {
    await conn.close();
  }
}

/** Kills whatever a test left running, so that no receiver outlives its test. */
export function cleanUpPrograms(): void {
  const killAll = async (): Promise<void> => {
    const left = [...alive];
    for (const p of left) p.child.kill("SIGKILL");
    await Promise.all(left.map((p) => p.exited));
  };
  afterEach(killAll);
  afterAll(killAll);
}
