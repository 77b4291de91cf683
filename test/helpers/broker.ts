/**
 * The broker the tests run against, and small tools around it.
 *
 * vitest's global setup (test/helpers/global-setup.ts) finds the broker once per run and
 * publishes it to every worker through AMQP_URL (child processes such as the tutorial
 * programs inherit it too). When a test runs without that setup, getBrokerUrl() looks for a
 * broker itself, once per process.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { findBroker, rabbitmqctlFromEnv } from "../../src/tutorial/find-broker.js";

export {
  BrokerNotFoundError,
  findBroker,
  probeAmqp,
  dockerAnswers,
  LOCAL_BROKER_URL,
  type FoundBroker,
  type FindBrokerOptions,
} from "../../src/tutorial/find-broker.js";

/** Set by the global setup when no broker could be found: the reason, for every broker test. */
export const BROKER_ERROR_ENV = "WARREN_BROKER_ERROR";
/** Set by the global setup when it started a container: its id, for rabbitmqctl(). */
export const BROKER_CONTAINER_ENV = "WARREN_BROKER_CONTAINER";

let cached: Promise<string> | undefined;

/**
 * The amqp:// URL of the broker to test against (with credentials). Rejects with a message
 * saying how to get a broker when there is none.
 */
export function getBrokerUrl(): Promise<string> {
  cached ??= (async () => {
    const setupError = process.env[BROKER_ERROR_ENV];
    if (setupError !== undefined && setupError !== "") throw new Error(setupError);
    const found = await findBroker();
    if (found.source === "container") {
      // Started outside the global setup: stop it when this process ends. testcontainers'
      // reaper removes it anyway if the process dies before that.
      process.once("beforeExit", () => void found.stop());
      if (found.containerId !== undefined) process.env[BROKER_CONTAINER_ENV] = found.containerId;
    }
    return found.url;
  })();
  return cached;
}

/** Host and port of an amqp:// or amqps:// URL (defaults 5672 / 5671). */
export function brokerAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port !== "" ? Number(u.port) : u.protocol === "amqps:" ? 5671 : 5672;
  return { host: host === "" ? "127.0.0.1" : host, port };
}

/** Where a local rabbitmqctl is looked for, after PATH. */
export const RABBITMQCTL_PATHS = [
  "/usr/sbin/rabbitmqctl",
  "/usr/lib/rabbitmq/bin/rabbitmqctl",
  "/usr/local/sbin/rabbitmqctl",
];

/**
 * Runs `rabbitmqctl <args>` against the test broker and resolves with its stdout. Uses the
 * local rabbitmqctl (PATH, then the usual sbin paths), or `docker exec` into the container
 * when the global setup started one. Rejects with stderr when it exits non-zero, and with a
 * clear message when there is no rabbitmqctl at all.
 */
export function rabbitmqctl(args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  const container = process.env[BROKER_CONTAINER_ENV];
  const command = rabbitmqctlFromEnv();
  let file: string;
  let argv: string[];
  if (command !== undefined) {
    // The broker under test is not the machine's own (scripts/test.sh: RabbitMQ 4.3 in its root).
    [file, ...argv] = [...command, ...args];
  } else if (container !== undefined && container !== "") {
    file = "docker";
    argv = ["exec", container, "rabbitmqctl", ...args];
  } else {
    file = RABBITMQCTL_PATHS.find((p) => existsSync(p)) ?? "rabbitmqctl";
    argv = args;
  }
  return new Promise((resolve, reject) => {
    execFile(
      file,
      argv,
      { timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve(stdout);
          return;
        }
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          reject(
            new Error(
              `rabbitmqctl: \`${file}\` was not found. This test changes the broker through rabbitmqctl, ` +
                `so it needs the broker on this machine: \`sudo apt-get install -y rabbitmq-server\` ` +
                `(or run \`bash .ci/run\`).`,
            ),
          );
          return;
        }
        reject(new Error(`${file} ${argv.join(" ")} failed: ${err.message}\n${stderr}`.trimEnd()));
      },
    );
  });
}

let counter = 0;

/**
 * A name no other test (in this process or a parallel one) uses: `${prefix}-${pid}-${n}-${hex}`.
 * For queues and exchanges that tests declare on the shared broker.
 */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${randomBytes(4).toString("hex")}`;
}
