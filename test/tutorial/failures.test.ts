/**
 * How the tutorial programs fail: one clear line on stderr, no stack trace, a non-zero
 * exit code. (Stopping with SIGINT/SIGTERM, which exits 0, is tested with receive_logs in
 * publish-subscribe.test.ts.)
 */
import * as amqplib from "amqplib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { getBrokerUrl, rabbitmqctl } from "../helpers/broker.js";
import { ROOT, cleanUpPrograms, run, type Exit } from "./programs.js";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";

cleanUpPrograms();

/** A URL for the test broker with something changed. */
async function brokerUrlWith(change: (url: URL) => void): Promise<string> {
  const url = new URL(await getBrokerUrl());
  change(url);
  return url.toString();
}

/** stderr is exactly one line, with no stack trace in it. */
function expectOneLine(exit: Exit): string {
  expect(exit.stderr.endsWith("\n")).toBe(true);
  const lines = exit.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(exit.stderr).not.toMatch(/^\s+at /m);
  return lines[0] ?? "";
}

describe("failures", () => {
  test("an unreachable broker: one line saying so, exit code 1", async () => {
    const exit = await run("emit_log", ["lost"], { AMQP_URL: "amqp://127.0.0.1:1" });
    expect(exit.code).toBe(1);
    expect(exit.stdout).toEqual([]);
    const line = expectOneLine(exit);
    expect(line).toBe(
      "emit_log: cannot connect to amqp://127.0.0.1:1: connection refused. " +
        "Is RabbitMQ running there? Set AMQP_URL to point at your broker.",
    );
  });

  test("a consumer fails the same way: receive_logs, worker, rpc_server", async () => {
    for (const program of ["receive_logs", "worker", "rpc_server"]) {
      const exit = await run(program, [], { AMQP_URL: "amqp://127.0.0.1:1" });
      expect(exit.code).toBe(1);
      expect(expectOneLine(exit)).toMatch(
        new RegExp(`^${program}: cannot connect to amqp://127\\.0\\.0\\.1:1: connection refused`),
      );
    }
  });

  test("a host name that does not resolve: one line saying so, exit code 1", async () => {
    // .invalid never resolves (RFC 2606).
    const exit = await run("receive_logs", [], { AMQP_URL: "amqp://no-such-host.invalid" });
    expect(exit.code).toBe(1);
    expect(exit.stdout).toEqual([]);
    expect(expectOneLine(exit)).toMatch(
      /^receive_logs: cannot connect to amqp:\/\/no-such-host\.invalid: (host not found|host name lookup failed)\. Is RabbitMQ running there\?/,
    );
  });

  test("a server that is not an AMQP broker (an HTTP server): one line saying so, exit code 1", async () => {
    // What a learner gets by pointing AMQP_URL at the management UI's port instead of 5672.
    const http = createServer((_req, res) => res.end());
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = http.address() as AddressInfo;
      const exit = await run("emit_log", ["lost"], { AMQP_URL: `amqp://127.0.0.1:${port}` });
      expect(exit.code).toBe(1);
      expect(exit.stdout).toEqual([]);
      const line = expectOneLine(exit);
      expect(line).toMatch(
        new RegExp(`^emit_log: the server at amqp://127\\.0\\.0\\.1:${port} does not speak AMQP 0-9-1 \\(`),
      );
      expect(line).toContain("Is that RabbitMQ's AMQP port (5672 by default)?");
    } finally {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
  });

  test("a server that accepts and never answers: one line after the connection timeout, exit code 1", async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const exit = await run("receive_logs", [], { AMQP_URL: `amqp://127.0.0.1:${port}?connection_timeout=300` });
      expect(exit.code).toBe(1);
      expect(exit.stdout).toEqual([]);
      expect(expectOneLine(exit)).toBe(
        `receive_logs: could not connect to amqp://127.0.0.1:${port} within 300 ms. ` +
          "Is RabbitMQ running there? Set AMQP_URL to point at your broker.",
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test("bad credentials: one line about the login, with the password hidden, exit code 1", async () => {
    const url = await brokerUrlWith((u) => {
      u.username = "guest";
      u.password = "not-the-password";
    });
    const exit = await run("emit_log", ["denied"], { AMQP_URL: url });
    expect(exit.code).toBe(1);
    const line = expectOneLine(exit);
    expect(line).toMatch(/^emit_log: the broker at amqp:\/\/guest:\*\*\*@.* refused the login: ACCESS_REFUSED - /);
    expect(line).toContain("Check the user name and password in AMQP_URL");
    expect(line).not.toContain("not-the-password");
  });

  test("a virtual host that does not exist: one line with the broker's reason, exit code 1", async () => {
    const url = await brokerUrlWith((u) => {
      u.pathname = "/no-such-vhost-for-warren";
    });
    const exit = await run("receive_logs", [], { AMQP_URL: url });
    expect(exit.code).toBe(1);
    const line = expectOneLine(exit);
    expect(line).toBe(
      "receive_logs: the broker refused connection.open (530): NOT_ALLOWED - vhost no-such-vhost-for-warren not found",
    );
  });

  describe("a declare the broker refuses", () => {
    // In a vhost of its own, `logs` already exists as a direct exchange; emit_log declares
    // it fanout, and the broker refuses with 406 PRECONDITION_FAILED.
    const vhost = `warren-tutorial-refused-${process.pid}`;
    beforeAll(async () => {
      await rabbitmqctl(["add_vhost", vhost]);
      const url = new URL(await getBrokerUrl());
      await rabbitmqctl([
        "set_permissions",
        "-p",
        vhost,
        decodeURIComponent(url.username || "guest"),
        ".*",
        ".*",
        ".*",
      ]);
      const conn = await amqplib.connect(await brokerUrlWith((u) => (u.pathname = `/${vhost}`)));
      const ch = await conn.createChannel();
      await ch.assertExchange("logs", "direct", { durable: false });
      await conn.close();
    });
    afterAll(async () => {
      await rabbitmqctl(["delete_vhost", vhost]);
    });

    test("one line with the reply code and text, exit code 1", async () => {
      const exit = await run("emit_log", ["refused"], {
        AMQP_URL: await brokerUrlWith((u) => (u.pathname = `/${vhost}`)),
      });
      expect(exit.code).toBe(1);
      expect(exit.stdout).toEqual([]);
      const line = expectOneLine(exit);
      expect(line).toMatch(/^emit_log: the broker refused exchange\.declare \(406\): PRECONDITION_FAILED - /);
      expect(line).toContain("exchange 'logs'");
    });

    test("with --trace, the frames and then the stack follow the line", async () => {
      const exit = await run("emit_log", ["--trace", "refused"], {
        AMQP_URL: await brokerUrlWith((u) => (u.pathname = `/${vhost}`)),
      });
      expect(exit.code).toBe(1);
      expect(exit.stderr).toMatch(/^<- ch 1 channel\.close .*406/m);
      expect(exit.stderr).toMatch(/^emit_log: the broker refused exchange\.declare \(406\): /m);
      expect(exit.stderr).toMatch(/^\s+at /m);
    });
  });

  test("npm run demo without a broker: one paragraph on how to get one, exit code 1", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/tutorial/demo.ts"], {
      cwd: ROOT,
      env: { ...process.env, AMQP_URL: "amqp://127.0.0.1:1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(1);
    expect(stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(stderr).toContain("amqp://127.0.0.1:1");
    expect(stderr).toContain("rabbitmq-server");
    expect(stderr).toContain("AMQP_URL");
  });
});
