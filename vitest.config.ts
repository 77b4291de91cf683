import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { probe } from "./test/helpers/capabilities.js";

// What the run can do beyond AMQP: files that need what it lacks are left out (capabilities.ts).
const leftOut = probe();

/**
 * With WARREN_ONCE_ELSEWHERE=1 (scripts/test.sh 3.10), what does not depend on the broker's
 * version is left out, because it runs once, in the RabbitMQ 4.3 pass: the codec, the docs, the
 * layout, the unit tests, Bun and Deno, and the tutorial programs (thin over the client, whose
 * behaviour on 3.10 the rest covers; their targeted run on 3.10 runs one end to end).
 */
const onceElsewhere =
  process.env["WARREN_ONCE_ELSEWHERE"] === "1"
    ? [
        "test/protocol/**",
        "test/docs/**",
        "test/infra/**",
        "test/soak/**",
        "test/runtimes/**",
        "test/tutorial/**",
        "test/unit/**",
        "test/client/url.test.ts",
        "test/client/wait.test.ts",
        "test/client/delivery-tags.test.ts",
        "test/client/hosts.test.ts",
        "test/client/conformance-doc.test.ts",
      ]
    : [];

/**
 * Three projects. "default" is everything that can share the broker: files run in parallel.
 * "serial" is the tests that change the broker itself (memory alarm, stop_app): one file at a
 * time, and never next to "default". "cluster" kills and restarts nodes of the three-node
 * RabbitMQ 4.3 cluster: one file at a time, last. `npm test` runs them one after the other.
 */
export default defineConfig({
  test: {
    globalSetup: ["./test/helpers/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 30_000,
    // Tests talk to a broker on the same machine; more workers than cores only adds noise.
    pool: "forks",
    maxWorkers: Math.min(4, Math.max(2, availableParallelism())),
    projects: [
      {
        extends: true,
        test: {
          name: "default",
          include: ["test/**/*.test.ts"],
          exclude: ["test/serial/**", "test/cluster/**", "**/node_modules/**", ...leftOut, ...onceElsewhere],
        },
      },
      {
        extends: true,
        test: {
          name: "serial",
          include: ["test/serial/**/*.test.ts"],
          exclude: ["**/node_modules/**", ...leftOut],
          fileParallelism: false,
          maxWorkers: 1,
        },
      },
      {
        extends: true,
        test: {
          name: "cluster",
          include: ["test/cluster/**/*.test.ts"],
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
