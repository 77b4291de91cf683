import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "../../src/index.js";

const conn = await connect({ url: process.env.AMQP_URL ?? "amqp://localhost", recovery: true });

// Liveness: restart the pod only when the connection is gone for good (closed, or recovery gave up).
// Readiness: take traffic while the broker answers a round trip, not merely while a socket is open.
const server = createServer(async (request, response) => {
  if (request.url === "/livez") return void response.writeHead(conn.state === "closed" ? 503 : 200).end(conn.state);
  if (request.url === "/readyz") {
    try {
      const ms = await conn.ping({ timeout: 1000 });
      return void response.writeHead(200).end(`broker answered in ${ms.toFixed(1)} ms`);
    } catch (e) {
      return void response.writeHead(503).end(e instanceof Error ? e.name : "error");
    }
  }
  response.writeHead(404).end();
}).listen(0);
await once(server, "listening");

const { port } = server.address() as AddressInfo;
const probe = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
console.log(`livez ${await probe("/livez")}, readyz ${await probe("/readyz")} (${conn.state})`);
await conn.close();
console.log(`livez ${await probe("/livez")}, readyz ${await probe("/readyz")} (${conn.state})`);
server.close();
