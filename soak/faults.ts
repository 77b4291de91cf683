/**
 * The soak's faults and their schedule. Two lanes run side by side, each one fault at a time
 * with a few seconds between: the node lane (SIGKILL and restart, a broker-forced close, a
 * memory alarm, a network partition between RabbitMQ nodes) and the network lane (the TCP proxy
 * between the clients and a node resets, blackholes past the heartbeat, or delays). So faults
 * land on top of each other, but never two node losses at once: a quorum stays up. Every fault is
 * undone before the next in its lane, when the soak stops, and again by `restoreAll` in a finally.
 */
import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { Proxy } from "../test/helpers/proxy.js";
import type { FaultKind, History } from "./history.js";
import type { Random } from "./random.js";

export type NodeName = "n1" | "n2" | "n3";
export const NODES: readonly NodeName[] = ["n1", "n2", "n3"];

const SCRIPT = new URL("../scripts/rabbitmq43.sh", import.meta.url).pathname;

/** scripts/rabbitmq43.sh ARGS; resolves with its stdout. */
export async function cluster(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)("bash", [SCRIPT, ...args], { timeout: 240_000, maxBuffer: 16 << 20 });
  return stdout;
}

export interface FaultContext {
  history: History;
  random: Random;
  proxies: Record<NodeName, Proxy>;
  /** The clients' heartbeat (ms): a blackhole lasts past it. */
  heartbeatMs: number;
  /** The kinds this run may inject. */
  kinds: ReadonlySet<FaultKind>;
}

interface Fault {
  kind: FaultKind;
  lane: "node" | "network";
  /** Injects the fault on `target`, holds it (cut short by `stopping`), and undoes it. */
  run(ctx: FaultContext, target: NodeName, stopping: AbortSignal): Promise<void>;
}

/** Waits `ms`, or less if the soak is stopping. */
const hold = (ms: number, stopping: AbortSignal) => sleep(ms, undefined, { signal: stopping }).catch(() => undefined);

/** Until every node runs and sees the other two (after a restart or a healed partition). */
async function clusterWhole(): Promise<void> {
  for (const node of NODES) await cluster("ctl", node, "-q", "await_online_nodes", "3", "--timeout", "120");
}

const FAULTS: readonly Fault[] = [
  {
    kind: "kill",
    lane: "node",
    async run(ctx, node, stopping) {
      await cluster("kill", node);
      await hold(ctx.random.int(1000, 5000), stopping);
      await cluster("start", node);
      await clusterWhole();
    },
  },
  {
    kind: "close",
    lane: "node",
    async run(_ctx, node) {
      await cluster("ctl", node, "-q", "close_all_connections", "soak: a broker-forced close");
    },
  },
  {
    kind: "alarm",
    lane: "node",
    async run(ctx, node, stopping) {
      await cluster("ctl", node, "-q", "set_vm_memory_high_watermark", "0.0000001");
      try {
        await hold(ctx.random.int(2000, 6000), stopping);
      } finally {
        await cluster("ctl", node, "-q", "set_vm_memory_high_watermark", "0.6");
      }
    },
  },
  {
    kind: "partition",
    lane: "node",
    async run(ctx, node, stopping) {
      await cluster("partition", node);
      try {
        // Past the nodes' net_ticktime (10 s), so the cluster notices and the minority is cut off.
        await hold(ctx.random.int(12_000, 20_000), stopping);
      } finally {
        await cluster("heal");
      }
      await clusterWhole();
    },
  },
  {
    kind: "reset",
    lane: "network",
    async run(ctx, node) {
      ctx.proxies[node].resetAll();
    },
  },
  {
    kind: "blackhole",
    lane: "network",
    async run(ctx, node, stopping) {
      ctx.proxies[node].blackhole();
      try {
        await hold(ctx.heartbeatMs * 2 + ctx.random.int(2000, 5000), stopping);
      } finally {
        ctx.proxies[node].heal();
      }
    },
  },
  {
    kind: "delay",
    lane: "network",
    async run(ctx, node, stopping) {
      ctx.proxies[node].setLatency(ctx.random.int(50, 400));
      try {
        await hold(ctx.random.int(3000, 8000), stopping);
      } finally {
        ctx.proxies[node].setLatency(0);
      }
    },
  },
];

/** Runs both lanes until `stopping` aborts; resolves once the faults in progress are undone. */
export async function runFaults(ctx: FaultContext, stopping: AbortSignal): Promise<void> {
  const lane = async (name: Fault["lane"], gap: [number, number]) => {
    const faults = FAULTS.filter((f) => f.lane === name && ctx.kinds.has(f.kind));
    if (faults.length === 0) return;
    while (!stopping.aborted) {
      await hold(ctx.random.int(...gap), stopping);
      if (stopping.aborted) return;
      const fault = ctx.random.pick(faults);
      // The network lane aims at a proxy that carries a connection, if one does.
      const carrying = NODES.filter((n) => ctx.proxies[n].open > 0);
      const target = ctx.random.pick(name === "network" && carrying.length > 0 ? carrying : NODES);
      ctx.history.record({ k: "fault", kind: fault.kind, target, phase: "start" });
      try {
        await fault.run(ctx, target, stopping);
        ctx.history.record({ k: "fault", kind: fault.kind, target, phase: "end" });
      } catch (e) {
        // The tool failed (a rabbitmqctl that timed out on a loaded machine), not the client:
        // recorded, whatever the fault left undone is undone, and the run goes on.
        ctx.history.record({
          k: "fault",
          kind: fault.kind,
          target,
          phase: "end",
          error: e instanceof Error ? e.message.split("\n")[0]! : String(e),
        });
        await restoreAll(ctx.proxies).catch(() => undefined);
      }
    }
  };
  await Promise.all([lane("node", [2000, 6000]), lane("network", [3000, 8000])]);
}

/** Undoes every fault there can be, whatever state a run left: for the soak's finally. */
export async function restoreAll(proxies: Partial<Record<NodeName, Proxy>>): Promise<void> {
  for (const proxy of Object.values(proxies)) {
    proxy.heal();
    proxy.setLatency(0);
  }
  await cluster("heal");
  await cluster("netns-cluster-start");
  for (const node of NODES) await cluster("ctl", node, "-q", "set_vm_memory_high_watermark", "0.6");
  await clusterWhole();
}

export const FAULT_KINDS: readonly FaultKind[] = FAULTS.map((f) => f.kind);
