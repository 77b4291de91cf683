/**
 * The libraries people put on amqplib, run on warren/amqplib instead (test/amqplib/libraries:
 * redirect.cjs hands them warren/amqplib where they require amqplib, as an npm `overrides` entry
 * would), each with a realistic program that counts every message by id: amqp-connection-manager
 * publishing with confirms through a connection the broker closes midway, and a consumer;
 * rascal's configured topology, publication and subscription. Each runs on amqplib too, and
 * both must count the same.
 */
import { describe, expect, test } from "vitest";
import { getBrokerUrl, uniqueName } from "../helpers/broker.js";
import { forceCloseConnection } from "../helpers/force-close.js";
import { Program, ROOT, cleanUpPrograms } from "../tutorial/programs.js";

cleanUpPrograms();

const TARGETS = ["amqplib", "warren"] as const;

async function library(target: (typeof TARGETS)[number], file: string, env: Record<string, string>): Promise<Program> {
  const dir = `${ROOT}/test/amqplib/libraries`;
  return new Program(
    file,
    [],
    { ...process.env, AMQP_URL: await getBrokerUrl(), AMQPLIB_TARGET: target, ...env },
    "pipe",
    [process.execPath, "--import", "tsx", "--require", `${dir}/redirect.cjs`, `${dir}/${file}.cjs`],
  );
}

describe("libraries built on amqplib, on warren/amqplib", () => {
  test.each(TARGETS)(
    "amqp-connection-manager on %s: 1000 confirmed publishes through a forced close, every id received",
    async (target) => {
      const name = uniqueName(`acm-${target}`);
      const program = await library(target, "connection-manager", {
        QUEUE: name,
        CONNECTION_NAME: name,
        TOTAL: "1000",
      });
      await program.line("half");
      expect(await forceCloseConnection(name)).toBe(1);
      const exit = await program.exited;
      expect(exit.code, program.output()).toBe(0);
      expect(exit.stdout).toContain("disconnect Connection closed");
      expect(exit.stdout.at(-1)).toBe("confirmed 1000 received 1000 missing 0 duplicates bounded true");
    },
    60_000,
  );

  test.each(TARGETS)(
    "rascal on %s: configured topology, 1000 published and subscribed, each once",
    async (target) => {
      const program = await library(target, "rascal", { QUEUE: uniqueName(`rascal-${target}`), TOTAL: "1000" });
      const exit = await program.exited;
      expect(exit.code, program.output()).toBe(0);
      expect(exit.stdout.at(-1)).toBe("received 1000 missing 0 duplicates 0");
    },
    60_000,
  );
});
