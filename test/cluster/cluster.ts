/**
 * The three-node RabbitMQ 4.3 cluster of scripts/rabbitmq43.sh (nodes c1, c2, c3 on AMQP ports
 * 5681-5683), for the cluster tests: URLs, rabbitmqctl against a node, killing and restarting one.
 * Every test that kills a node restarts it in a `finally` (restoreCluster), so the next test and
 * the next run find all three up.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, beforeAll } from "vitest";
import { connect, type Connection } from "../../src/index.js";
import { ROOT } from "../tutorial/programs.js";

export type Node = "c1" | "c2" | "c3";
export const NODES: readonly Node[] = ["c1", "c2", "c3"];
const PORTS: Record<Node, number> = { c1: 5681, c2: 5682, c3: 5683 };

export const url = (node: Node): string => `amqp://guest:guest@127.0.0.1:${PORTS[node]}`;
export const erlangName = (node: Node): string => `warren-${node}@localhost`;

const script = (...args: string[]) =>
  promisify(execFile)("bash", [`${ROOT}/scripts/rabbitmq43.sh`, ...args], { timeout: 180_000, maxBuffer: 16 << 20 });

/** rabbitmqctl ARGS against `node`; resolves with stdout. */
export async function ctl(node: Node, ...args: string[]): Promise<string> {
  return (await script("ctl", node, ...args)).stdout;
}

/** SIGKILL the node's Erlang VM, as a crash or a lost machine would. */
export async function kill(node: Node): Promise<void> {
  await script("kill", node);
}

/** Start every node that is down and wait until the cluster is whole again. */
export async function restoreCluster(): Promise<void> {
  await script("cluster-start");
}

/** The node a quorum queue's leader is on. */
export async function leaderOf(queue: string, via: Node): Promise<Node> {
  const out = await ctl(via, "-q", "list_queues", "name", "leader", "--no-table-headers");
  const line = out.split("\n").find((l) => l.split("\t")[0] === queue);
  const leader = line?.split("\t")[1]?.trim();
  const node = NODES.find((n) => leader === erlangName(n));
  if (node === undefined) throw new Error(`no leader found for ${queue}: ${JSON.stringify(line)}`);
  return node;
}

/**
 * For a cluster test file: the cluster whole before its tests, and `on(node)` for a plain
 * connection to one node; `cleanup(fn)` runs after each test, last added first.
 */
export function useCluster(): {
  on: (node: Node) => Promise<Connection>;
  cleanup: (fn: () => Promise<unknown>) => void;
} {
  const cleanups: (() => Promise<unknown>)[] = [];
  beforeAll(() => restoreCluster(), 180_000);
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  }, 180_000);
  const cleanup = (fn: () => Promise<unknown>) => void cleanups.push(fn);
  const on = async (node: Node): Promise<Connection> => {
    const conn = await connect({ url: url(node), timeout: 15_000 });
    cleanup(() => conn.close());
    return conn;
  };
  return { on, cleanup };
}
