/**
 * Open/close cycles for resources.test.ts, run in a child process of its own
 * (`node --expose-gc --import tsx test/fault/cycles.ts`): a clean heap that only this work
 * touches, a real global.gc(), and a process whose exiting by itself proves that nothing
 * (socket, timer) was left holding the event loop.
 *
 * Prints one JSON line: for channels and connections, the heap used and the active resources
 * after a warm-up and after the cycles. Never calls process.exit.
 */
import { connect, type Connection } from "../../src/index.js";

const url = process.env["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672";
const CHANNEL_CYCLES = Number(process.env["CHANNEL_CYCLES"] ?? 10_000);
const CONNECTION_CYCLES = Number(process.env["CONNECTION_CYCLES"] ?? 1_000);
/** Cycles run this many at a time: the broker's round trips, not the client, set the pace. */
const CHANNEL_BATCH = 50;
const CONNECTION_BATCH = 20;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");

interface Sample {
  heapUsed: number;
  resources: Record<string, number>;
}

async function sample(): Promise<Sample> {
  // Let closed sockets finish closing, then collect until the heap stops shrinking.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  let heapUsed = Infinity;
  for (let i = 0; i < 10; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
    const now = process.memoryUsage().heapUsed;
    if (now >= heapUsed) break;
    heapUsed = now;
  }
  const resources: Record<string, number> = {};
  // stdout and stderr are pipes or TTYs depending on who started us: not ours to count.
  for (const r of process.getActiveResourcesInfo())
    if (r !== "PipeWrap" && r !== "TTYWrap") resources[r] = (resources[r] ?? 0) + 1;
  return { heapUsed, resources };
}

/** Cycles completed, so the test can tell the work was really done. */
const completed = { channels: 0, connections: 0 };

async function channelCycles(conn: Connection, n: number): Promise<void> {
  for (let done = 0; done < n; done += CHANNEL_BATCH) {
    const batch = Math.min(CHANNEL_BATCH, n - done);
    await Promise.all(
      Array.from({ length: batch }, async () => {
        const ch = await conn.openChannel();
        await ch.close();
        completed.channels += 1;
      }),
    );
  }
}

async function connectionCycles(n: number): Promise<void> {
  for (let done = 0; done < n; done += CONNECTION_BATCH) {
    const batch = Math.min(CONNECTION_BATCH, n - done);
    await Promise.all(
      Array.from({ length: batch }, async () => {
        const c = await connect(url);
        await c.openChannel();
        await c.close();
        completed.connections += 1;
      }),
    );
  }
}

const conn = await connect(url);
await channelCycles(conn, 500); // warm-up: JIT, the channel table at its working size
const channelsBefore = await sample();
completed.channels = 0;
await channelCycles(conn, CHANNEL_CYCLES);
const channelsAfter = await sample();
const openChannels = conn.openChannels;
await conn.close();

await connectionCycles(50);
const connectionsBefore = await sample();
completed.connections = 0;
await connectionCycles(CONNECTION_CYCLES);
const connectionsAfter = await sample();

console.log(
  JSON.stringify({
    channels: { cycles: completed.channels, before: channelsBefore, after: channelsAfter, openChannels },
    connections: { cycles: completed.connections, before: connectionsBefore, after: connectionsAfter },
  }),
);
