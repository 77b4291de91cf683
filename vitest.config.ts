import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

/**
 * Two projects. "default" is everything that can share the broker: files run in parallel.
 * "serial" is the tests that change the broker itself (memory alarm, stop_app): one file at a
 * time, and never next to "default" -- `npm test` runs the two projects one after the other.
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
          exclude: ["test/serial/**", "**/node_modules/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "serial",
          include: ["test/serial/**/*.test.ts"],
          fileParallelism: false,
          maxWorkers: 1,
        },
      },
    ],
  },
});
