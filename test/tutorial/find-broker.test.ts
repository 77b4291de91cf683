/**
 * How the demo (and the test setup) finds a broker, and what it says when there is none:
 * src/tutorial/find-broker.ts. Probes go to a closed port and to an HTTP server on an
 * ephemeral port, never to anything shared.
 */
import { createServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { describe, expect, test } from "vitest";
import { BrokerNotFoundError, findBroker, probeAmqp } from "../../src/tutorial/find-broker.js";
import { brokerAddress, getBrokerUrl } from "../helpers/broker.js";

describe("findBroker", () => {
  test("AMQP_URL wins, as given, without probing anything", async () => {
    const found = await findBroker({ env: { AMQP_URL: "amqp://user:pw@broker.invalid:5673/vh" }, docker: false });
    expect(found).toMatchObject({
      url: "amqp://user:pw@broker.invalid:5673/vh",
      source: "env",
      containerId: undefined,
    });
  });

  test("a local broker that answers connection.start is used", async () => {
    const { host, port } = brokerAddress(await getBrokerUrl());
    const found = await findBroker({ env: {}, local: { host, port }, docker: false });
    expect(found).toMatchObject({ url: `amqp://guest:guest@${host}:${port}`, source: "local" });
  });

  test("no broker: one paragraph on how to get one, naming what was tried", async () => {
    const err = await findBroker({ env: {}, local: { host: "127.0.0.1", port: 1 }, docker: false }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BrokerNotFoundError);
    const message = (err as Error).message;
    expect(message).not.toContain("\n");
    expect(message).toContain("amqp://guest:guest@127.0.0.1:1: ECONNREFUSED");
    expect(message).toContain("Docker: not tried");
    expect(message).toContain("apt-get install -y rabbitmq-server");
    expect(message).toContain("bash .ci/run");
    expect(message).toContain("AMQP_URL=");
  });

  test("probeAmqp tells an AMQP broker from a server that merely listens", async () => {
    const { host, port } = brokerAddress(await getBrokerUrl());
    expect(await probeAmqp(host, port)).toBe(true);
    expect(await probeAmqp("127.0.0.1", 1)).toBe("ECONNREFUSED");

    const http = createServer((_req, res) => res.end());
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    try {
      expect(await probeAmqp("127.0.0.1", (http.address() as AddressInfo).port)).toBe(
        "it answered, but not with an AMQP 0-9-1 connection.start",
      );
    } finally {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }

    // A server that accepts and says nothing: bounded by the probe's timeout.
    const sockets: Socket[] = [];
    const silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      expect(await probeAmqp("127.0.0.1", (silent.address() as AddressInfo).port, 200)).toBe("no reply within 200 ms");
    } finally {
      await new Promise((resolve) => {
        silent.close(resolve);
        for (const socket of sockets) socket.destroy();
      });
    }
  });
});
