/**
 * What a test may need beyond an AMQP broker, found once per vitest run by vitest.config.ts
 * (probe()) and handed to the workers in the environment:
 * - "rabbitmqctl": rabbitmqctl reaches the broker under test (the tutorials' own virtual hosts,
 *   closing a connection as an operator, alarms, stop_app). A local broker whose rabbitmqctl
 *   needs root (its Erlang cookie), or one elsewhere, lacks it.
 * - "rabbitmq43": the RabbitMQ 4.3 nodes of scripts/rabbitmq43.sh (the strict and oauth nodes),
 *   which run in a debootstrap root: `npm run test:ci` (scripts/test.sh, as root) has them.
 * - "pika": Python's pika (the tutorials against the official Python programs).
 * - "chromium": Debian's chromium (the API reference's browser test).
 * A file that needs what the run lacks is left out, a test skipped with the reason in its title,
 * and the run says so. In the full matrix under CI a lack fails the run instead: CI never passes
 * by skipping.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, test } from "vitest";
import { rabbitmqctlFromEnv } from "../../src/tutorial/find-broker.js";
import { RABBITMQCTL_PATHS } from "./broker.js";

export type Capability = "rabbitmqctl" | "rabbitmq43" | "pika" | "chromium";

const ENV = (c: Capability) => `WARREN_LACKS_${c.toUpperCase()}`;

/** Files that need a capability as a whole (the rest say it test by test: testNeeding, describeNeeding). */
export const FILES_NEEDING: Record<Capability, readonly string[]> = {
  rabbitmqctl: [
    "test/tutorial/hello-world.test.ts",
    "test/tutorial/work-queues.test.ts",
    "test/tutorial/publish-subscribe.test.ts",
    "test/tutorial/routing.test.ts",
    "test/tutorial/topics.test.ts",
    "test/tutorial/rpc.test.ts",
    "test/tutorial/pika.test.ts",
    "test/tutorial/failures.test.ts",
    "test/tutorial/built-package.test.ts",
    "test/runtimes/runtimes.test.ts",
    "test/serial/blocked.test.ts",
    "test/serial/stop-app.test.ts",
    "test/serial/amqplib-blocked.test.ts",
    "test/amqplib/tutorials.test.ts",
    "test/amqplib/differential.test.ts",
    "test/amqplib/callback.test.ts",
    "test/amqplib/libraries.test.ts",
  ],
  rabbitmq43: ["test/client/rabbitmq43.test.ts", "test/client/oauth2.test.ts"],
  pika: ["test/tutorial/pika.test.ts", "test/amqplib/tutorials.test.ts"],
  chromium: ["test/docs/reference.test.ts"],
};

/** Why the run lacks each capability it lacks (the others are absent). */
function find(): Partial<Record<Capability, string>> {
  const lacks: Partial<Record<Capability, string>> = {};
  const ok = (file: string, args: string[]) => {
    try {
      execFileSync(file, args, { stdio: "ignore", timeout: 30_000 });
      return true;
    } catch {
      return false;
    }
  };
  const ctl = rabbitmqctlFromEnv() ?? [RABBITMQCTL_PATHS.find((p) => existsSync(p)) ?? "rabbitmqctl"];
  // A broker in a container (no local one) is reached by docker exec once the setup starts it.
  const docker = process.env["AMQP_URL"] === undefined && !existsSync(ctl[0]) && ok("docker", ["info"]);
  if (!docker && !ok(ctl[0], [...ctl.slice(1), "-q", "ping"]))
    lacks.rabbitmqctl = `rabbitmqctl does not reach the broker (${ctl.join(" ")} ping failed: its Erlang cookie is root's, or the broker is elsewhere)`;
  if (process.env["WARREN_FULL_MATRIX"] !== "1")
    lacks.rabbitmq43 = "needs the RabbitMQ 4.3 nodes of scripts/rabbitmq43.sh: npm run test:ci, as root";
  if (!ok(existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3", ["-c", "import pika"]))
    lacks.pika = "no Python pika (apt-get install python3-pika)";
  if (!existsSync("/usr/bin/chromium")) lacks.chromium = "no /usr/bin/chromium (apt-get install chromium)";
  return lacks;
}

/**
 * For vitest.config.ts: find what the run lacks, tell the workers (environment), print one line
 * each, and return the files to leave out. Fails instead, in the full matrix under CI.
 */
export function probe(): string[] {
  // vitest reads its config more than once per run: find once, say it once.
  const found = process.env[PROBED];
  const lacks = found !== undefined ? (JSON.parse(found) as Partial<Record<Capability, string>>) : find();
  const left: string[] = [];
  for (const [c, why] of Object.entries(lacks) as [Capability, string][]) {
    if (process.env["CI"] !== undefined && process.env["WARREN_FULL_MATRIX"] === "1")
      throw new Error(`this CI run lacks ${c}: ${why}`);
    process.env[ENV(c)] = why;
    left.push(...FILES_NEEDING[c]);
    if (found === undefined)
      console.log(
        `[warren tests] without ${c}: ${why}; left out: ${FILES_NEEDING[c].length} files, and the tests marked [skipped: ...]`,
      );
  }
  process.env[PROBED] = JSON.stringify(lacks);
  return [...new Set(left)];
}

const PROBED = "WARREN_CAPABILITIES";

/** Why the run lacks `c`, or undefined when it has it. */
export function lacking(c: Capability): string | undefined {
  const why = process.env[ENV(c)];
  return why === undefined || why === "" ? undefined : why;
}

const titled = (title: string, why: string | undefined) => (why === undefined ? title : `${title} [skipped: ${why}]`);

/** `describe` (`sequential`: describe.sequential), skipped with the reason when the run lacks `c`. */
export function describeNeeding(
  c: Capability,
  title: string,
  fn: () => void,
  options: { sequential?: boolean; timeout?: number } = {},
): void {
  const why = lacking(c);
  if (why !== undefined) describe.skip(titled(title, why), fn);
  else
    (options.sequential === true ? describe.sequential : describe)(
      title,
      options.timeout === undefined ? {} : { timeout: options.timeout },
      fn,
    );
}

/** `test`, skipped with the reason when the run lacks `c`. */
export function testNeeding(c: Capability, title: string, fn: () => Promise<void>, timeout?: number): void {
  const why = lacking(c);
  test.skipIf(why !== undefined)(titled(title, why), fn, timeout);
}
