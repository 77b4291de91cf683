/**
 * The hosts of a `url` list on the three-node cluster: `hostOrder: "shuffle"` spreads a fleet
 * over the nodes, and recovery does not go back first to a node that closed the connection with
 * 541. (RabbitMQ 4.3 seen here: a node cut off in a minority accepts connections and channels,
 * then answers a declare after 30 s with 541 INTERNAL_ERROR "the metadata store operation timed
 * out". Cutting a node off needs a network partition; the node that answers 541 here is a
 * scripted one in front of the cluster, which a healthy broker never is on request.)
 */
import { expect, test } from "vitest";
import { InternalError, connect, type Connection } from "../../src/index.js";
import { uniqueName } from "../helpers/broker.js";
import {
  connectionCloseFrame,
  longstr,
  methodFrame,
  standardHandshake,
  startFakeServer,
} from "../helpers/fake-server.js";
import { outcome } from "../client/util.js";
import { NODES, ctl, url, useCluster } from "./cluster.js";

const { cleanup } = useCluster();

/** The AMQP port of the node each of our named connections is on, from rabbitmqctl list_connections. */
async function nodePorts(prefix: string): Promise<number[]> {
  const out = await ctl("c1", "-q", "list_connections", "name", "client_properties", "--no-table-headers");
  return out
    .split("\n")
    .filter((line) => line.includes(`{"connection_name","${prefix}-`))
    .map((line) => Number(/-> [\d.]+:(\d+)/.exec(line)?.[1]));
}

test('hostOrder "shuffle": 30 connections given the same list spread over all three nodes; "in-order" puts all on the first', async () => {
  const urls = NODES.map(url);
  for (const hostOrder of ["shuffle", "in-order"] as const) {
    const prefix = uniqueName(`hosts-${hostOrder}`);
    const conns: Connection[] = [];
    cleanup(() => Promise.all(conns.map((c) => c.close())));
    for (let i = 0; i < 30; i++) conns.push(await connect({ url: urls, hostOrder, connectionName: `${prefix}-${i}` }));
    const ports = await nodePorts(prefix);
    expect(ports).toHaveLength(30);
    const perNode = NODES.map((_, i) => ports.filter((p) => p === 5681 + i).length);
    // Shuffled, a node gets none of 30 with probability 3 * (2/3)^30, about 1.6e-5.
    if (hostOrder === "shuffle") for (const n of perNode) expect(n).toBeGreaterThan(0);
    else expect(perNode).toEqual([30, 0, 0]);
  }
});

test("a host that closed the connection with 541 is tried last: recovery moves on to the next node instead of returning to it", async () => {
  let connections = 0;
  const minority = await startFakeServer(async (c) => {
    connections++;
    await standardHandshake(c);
    const open = await c.expectMethod(20, 10);
    await c.send(methodFrame(open.channel, 20, 11, longstr("")));
    await c.expectMethod(50, 10); // queue.declare
    await c.send(
      connectionCloseFrame(
        541,
        "INTERNAL_ERROR - Could not declare quorum queue 'q' in vhost '/' on node 'minority' because the metadata store operation timed out",
        50,
        10,
      ),
    );
    await c.expectMethod(10, 51).catch(() => undefined);
  });
  cleanup(() => minority.close());
  const conn = await connect({
    url: [minority.url(), ...NODES.map(url)],
    recovery: { initialDelay: 10, maxDelay: 100 },
    timeout: 15_000,
  });
  cleanup(() => conn.close());
  const reconnected = new Promise<{ port: number }>((resolve) => conn.once("reconnected", resolve));
  const ch = await conn.openChannel();
  const queue = uniqueName("after-541");
  const first = await outcome(ch.queueDeclare(queue, { durable: true, queueType: "quorum" }));
  expect(!first.ok && first.error).toBeInstanceOf(InternalError);
  expect((await reconnected).port).toBe(5681);
  // The channel is back, on c1: the declare goes through there.
  await ch.queueDeclare(queue, { durable: true, queueType: "quorum" });
  await ch.queueDelete(queue);
  expect(connections).toBe(1);
});
