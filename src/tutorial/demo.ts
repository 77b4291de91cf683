#!/usr/bin/env node
/**
 * `npm run demo`: tutorial 3 (Publish/Subscribe) played out end to end with the real
 * programs, as separate processes, the way the tutorial asks you to run them in terminals:
 *
 *   1. find a broker (AMQP_URL, a local RabbitMQ, or a container when Docker is there);
 *   2. start two `receive_logs` and wait until both say they are waiting;
 *   3. emit a few logs with `emit_log`;
 *   4. show that each receiver got every one of them;
 *   5. show the bindings from `logs` to the receivers' server-named queues;
 *   6. stop the receivers with SIGINT (Ctrl-C) and show their exclusive queues are gone.
 *
 * The receivers run with --trace; the demo reads their queue names from the traced
 * queue.declare-ok frames, so it needs neither rabbitmqctl nor the management plugin
 * (it uses rabbitmqctl for the bindings when there is one).
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, NotFoundError, redactUrl } from "../index.js";
import { BrokerNotFoundError, findBroker, probeAmqp, rabbitmqctlFromEnv, type FoundBroker } from "./find-broker.js";

/** How long a step may take before the demo gives up on it. */
const STEP_TIMEOUT_MS = 20_000;

const LOGS = ["info: Hello World!", "warning: disk 91% full", "error: the coffee machine is on fire"];

const here = dirname(fileURLToPath(import.meta.url));
/** `.ts` when run with tsx from src/, `.js` when run from the built dist/. */
const extension = import.meta.url.endsWith(".ts") ? ".ts" : ".js";

function say(text = ""): void {
  process.stdout.write(`${text}\n`);
}

function heading(text: string): void {
  say();
  say(`== ${text}`);
}

/** One tutorial program running as a child process, its output collected line by line. */
class Running {
  readonly lines: string[] = [];
  readonly traced: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private waiters: (() => void)[] = [];

  constructor(
    readonly label: string,
    program: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    // The same node, with the same loader flags (tsx's, when the demo runs from source).
    this.child = spawn(process.execPath, [...process.execArgv, join(here, program + extension), ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.collect(this.child.stdout, this.lines);
    this.collect(this.child.stderr, this.traced);
    this.exited = new Promise((resolve) => {
      this.child.on("exit", (code) => {
        resolve(code);
        this.wake();
      });
      this.child.on("error", () => resolve(null));
    });
  }

  private collect(stream: NodeJS.ReadableStream | null, into: string[]): void {
    let partial = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop() ?? "";
      into.push(...parts);
      this.wake();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `done()` holds, checked after each line; rejects after STEP_TIMEOUT_MS. */
  async until(what: string, done: () => boolean): Promise<void> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (!done()) {
      if (this.child.exitCode !== null) {
        throw new Error(
          `${this.label} exited (code ${this.child.exitCode}) before ${what}:\n${this.traced.slice(-3).join("\n")}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: gave up waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The name of the queue the program declared, as its --trace showed it. */
  queueName(): string | undefined {
    for (const line of this.traced) {
      const match = /queue\.declare-ok \{queue: "([^"]+)"/.exec(line);
      if (match) return match[1];
    }
    return undefined;
  }

  /** What the program printed on stderr besides its --trace frames: why it failed. */
  errors(): string[] {
    return this.traced.filter((line) => line !== "" && !/^(->|<-) /.test(line));
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null) this.child.kill(signal);
  }
}

/**
 * The rabbitmqctl of the broker: WARREN_RABBITMQCTL (a command line, e.g. the one
 * scripts/rabbitmq43.sh offers for its node), `docker exec` into the container the demo started,
 * or the local rabbitmqctl for a broker on this machine.
 */
function rabbitmqctl(broker: FoundBroker, args: string[]): Promise<string | undefined> {
  let file: string;
  let argv: string[];
  const command = rabbitmqctlFromEnv();
  if (command !== undefined) {
    [file, ...argv] = [...command, ...args];
  } else if (broker.source === "container" && broker.containerId !== undefined) {
    file = "docker";
    argv = ["exec", broker.containerId, "rabbitmqctl", ...args];
  } else {
    const host = new URL(broker.url).hostname;
    if (!["127.0.0.1", "localhost", "[::1]"].includes(host)) return Promise.resolve(undefined);
    file = ["/usr/sbin/rabbitmqctl", "/usr/local/sbin/rabbitmqctl"].find((p) => existsSync(p)) ?? "rabbitmqctl";
    argv = args;
  }
  return new Promise((resolve) => {
    execFile(file, argv, { timeout: STEP_TIMEOUT_MS }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

async function demo(broker: FoundBroker): Promise<void> {
  const env = { ...process.env, AMQP_URL: broker.url };
  const running: Running[] = [];
  const stopAll = (): void => running.forEach((r) => r.signal("SIGKILL"));
  process.on("exit", stopAll);

  heading("Two receivers: receive_logs & receive_logs");
  const receivers = [1, 2].map((n) => new Running(`receiver ${n}`, "receive_logs", ["--trace"], env));
  running.push(...receivers);
  for (const r of receivers) {
    await r.until("its waiting line", () => r.lines.includes(" [*] Waiting for logs. To exit press CTRL+C"));
    say(`${r.label} (queue ${r.queueName() ?? "?"}): ${r.lines[0]}`);
  }

  heading("Emitting logs: emit_log <message>");
  for (const log of LOGS) {
    const emitter = new Running("emit_log", "emit_log", log.split(" "), env);
    running.push(emitter);
    const code = await emitter.exited;
    if (code !== 0) throw new Error(`emit_log exited with code ${code}: ${emitter.traced.join(" ")}`);
    say(`emit_log ${JSON.stringify(log)}: ${emitter.lines.join(" ")}`);
  }

  heading("What each receiver printed");
  for (const r of receivers) {
    await r.until("all the logs", () => LOGS.every((log) => r.lines.includes(` [x] ${log}`)));
    say(`${r.label}:`);
    for (const line of r.lines) say(`  ${line}`);
  }
  say(`Both receivers got all ${LOGS.length} logs: the fanout exchange copied each one to both queues.`);

  heading("Bindings of the exchange logs");
  const queues = receivers.map((r) => r.queueName()).filter((q): q is string => q !== undefined);
  // The bindings of the broker URL's virtual host ("/" when the URL names none).
  const vhost = decodeURIComponent(new URL(broker.url).pathname.slice(1)) || "/";
  const listed = await rabbitmqctl(broker, ["-q", "list_bindings", "-p", vhost]);
  const lines = (listed ?? "").split("\n").filter((l) => l.startsWith("logs\t"));
  // A local rabbitmqctl may answer for another broker than AMQP_URL's (another port, another
  // node): then it lists neither receiver's queue, and saying so beats printing an empty list.
  if (queues.length > 0 && queues.every((q) => lines.some((l) => l.includes(`\t${q}\t`)))) {
    say(`rabbitmqctl list_bindings${vhost === "/" ? "" : ` -p ${vhost}`}, the lines for logs:`);
    for (const line of lines) say(`  ${line}`);
  } else {
    say(
      listed === undefined
        ? "(no rabbitmqctl for this broker; the bindings, as the receivers' --trace shows them:)"
        : `(rabbitmqctl here answers for another broker than ${redactUrl(broker.url)}: it lists neither receiver's queue; set WARREN_RABBITMQCTL to that broker's rabbitmqctl. The bindings, as the receivers' --trace shows them:)`,
    );
    for (const r of receivers) {
      for (const line of r.traced.filter((l) => l.includes("queue.bind ")))
        say(`  ${r.label}: ${line.replace(/^-> /, "")}`);
    }
  }

  heading("Stopping the receivers with SIGINT (Ctrl-C)");
  for (const r of receivers) r.signal("SIGINT");
  for (const r of receivers) {
    const code = await r.exited;
    say(`${r.label} exited with code ${code}`);
    if (code !== 0)
      throw new Error(`${r.label} exited with code ${code}: ${r.errors().join(" ") || "(nothing on stderr)"}`);
  }

  heading("Their exclusive queues are gone");
  const conn = await connect(broker.url);
  try {
    for (const queue of queues) {
      // A passive declare asks "does it exist?"; the broker answers 404 by closing the channel.
      const ch = await conn.openChannel();
      try {
        await ch.queueDeclare(queue, { passive: true });
        await ch.close();
        throw new Error(`queue ${queue} still exists`);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        say(`${queue}: gone (passive queue.declare -> ${err.replyCode} ${err.replyText.split(" - ")[0]})`);
      }
    }
  } finally {
    await conn.close();
  }
  say();
  say("Done: every receiver got every log, and each receiver's queue lived exactly as long as it did.");
}

/** Exits 1 with one paragraph on how to get a broker. */
function noBroker(why: string): never {
  process.stderr.write(
    `${why}. The demo needs a RabbitMQ: install and start one locally ` +
      `(\`sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached\`), ` +
      `or start a Docker engine and the demo starts a RabbitMQ container itself, ` +
      `or set AMQP_URL to a broker you have (e.g. AMQP_URL=amqp://user:password@host:5672/vhost npm run demo).\n`,
  );
  process.exit(1);
}

async function start(): Promise<void> {
  let broker: FoundBroker;
  try {
    broker = await findBroker({ onProgress: (m) => say(m) });
  } catch (err) {
    if (!(err instanceof BrokerNotFoundError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  if (broker.source === "env") {
    // findBroker trusts AMQP_URL; check that something answers there before starting programs.
    const url = new URL(broker.url);
    if (url.protocol === "amqp:") {
      const answer = await probeAmqp(url.hostname.replace(/^\[|\]$/g, ""), Number(url.port || 5672));
      if (answer !== true)
        noBroker(`AMQP_URL is ${redactUrl(broker.url)}, but no AMQP broker answers there (${answer})`);
    }
  }
  say(`Broker: ${redactUrl(broker.url)} (${broker.source === "env" ? "from AMQP_URL" : broker.source})`);
  try {
    await demo(broker);
  } finally {
    await broker.stop();
  }
}

start().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
