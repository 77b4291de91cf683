/**
 * Resources: 10,000 channel open/close cycles on one connection and 1,000 connection
 * open/close cycles leave no growth in handles or heap.
 *
 * The cycles run in a child process (test/fault/cycles.ts under `node --expose-gc --import
 * tsx`): its heap holds nothing but this work, global.gc() is real, and its exiting by itself
 * at the end shows that no socket or timer of the client outlived its connection. Heap is
 * compared after a warm-up and after the cycles, each after full collections; the bound is
 * generous (a leak of a few hundred bytes per channel, or a couple of KiB per connection,
 * would cross it) and is about memory, not time.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { getBrokerUrl } from "../helpers/broker.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT = fileURLToPath(new URL("./cycles.ts", import.meta.url));
/** Heap growth allowed per phase, after gc. Measured growth is a few hundred KiB either way. */
const HEAP_BOUND = 2 * 1024 * 1024;

interface Sample {
  heapUsed: number;
  resources: Record<string, number>;
}
interface Report {
  channels: { cycles: number; before: Sample; after: Sample; openChannels: number };
  connections: { cycles: number; before: Sample; after: Sample };
}

/** Runs the child and waits for it to exit on its own; a child that doesn't is killed and reported. */
function runCycles(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; exitedByItself: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", SCRIPT], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let exitedByItself = true;
    let killer: NodeJS.Timeout | undefined;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      // Once the report is out the work is done: the process must now end by itself.
      if (stdout.includes("\n") && killer === undefined) {
        killer = setTimeout(() => {
          exitedByItself = false;
          child.kill("SIGKILL");
        }, 10_000);
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, exitedByItself });
    });
  });
}

test("10,000 channel and 1,000 connection open/close cycles: no growth in handles or heap, and the process exits by itself", async () => {
  const run = await runCycles({ AMQP_URL: await getBrokerUrl(), CHANNEL_CYCLES: "10000", CONNECTION_CYCLES: "1000" });
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  expect(run.exitedByItself).toBe(true);
  const report = JSON.parse(run.stdout) as Report;

  const { channels, connections } = report;
  expect(channels.cycles).toBe(10_000);
  expect(channels.openChannels).toBe(0);
  expect(channels.after.resources).toEqual(channels.before.resources);
  expect(channels.after.heapUsed - channels.before.heapUsed).toBeLessThan(HEAP_BOUND);

  expect(connections.cycles).toBe(1_000);
  // Between connections nothing at all is active: no socket, no timer.
  expect(connections.before.resources).toEqual({});
  expect(connections.after.resources).toEqual({});
  expect(connections.after.heapUsed - connections.before.heapUsed).toBeLessThan(HEAP_BOUND);
}, 120_000);
