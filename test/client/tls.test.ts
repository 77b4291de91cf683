/**
 * amqps:// over node:tls. The test broker has no TLS listener, so the test puts one in front of
 * it: a node:tls server with a self-signed certificate made at test time by the `openssl` CLI,
 * piping the decrypted stream to the broker's plain port. Certificate verification is on by
 * default (the self-signed certificate is refused with a clear error), the certificate is
 * accepted given as `ca`, and `servername` is what is sent (SNI) and verified. A client
 * certificate selects SASL EXTERNAL by default, which this broker does not offer: refused
 * clearly, not a hang.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AuthenticationError, ConnectionClosedError, connect } from "../../src/index.js";
import { brokerAddress, getBrokerUrl } from "../helpers/broker.js";
import { eventually, outcome } from "./util.js";

const run = promisify(execFile);

let dir: string;
let cert: Buffer;
let key: Buffer;
let server: tls.Server;
let port: number;
/** The SNI server name of each TLS connection the forwarder accepted (false when none was sent). */
const servernames: (string | false)[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "warren-tls-"));
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    join(dir, "key.pem"),
    "-out",
    join(dir, "cert.pem"),
    "-days",
    "1",
    "-subj",
    "/CN=warren.test",
    "-addext",
    "subjectAltName=DNS:warren.test",
  ]);
  cert = await readFile(join(dir, "cert.pem"));
  key = await readFile(join(dir, "key.pem"));
  const target = brokerAddress(await getBrokerUrl());
  server = tls.createServer({ key, cert }, (client) => {
    servernames.push((client as tls.TLSSocket & { servername: string | false }).servername);
    const upstream = net.connect(target);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  // A failed handshake (the client refusing our certificate) is an error on the server side: expected here.
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as net.AddressInfo).port;
}, 30_000);

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

function url(): string {
  return `amqps://guest:guest@127.0.0.1:${port}`;
}

describe("amqps://", () => {
  test("verification is on by default: a self-signed certificate is refused with a clear error", async () => {
    const r = await outcome(connect({ url: url(), connectionTimeout: 5000 }));
    const err = (r as { error: ConnectionClosedError }).error;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.message).toMatch(/could not connect to amqps:\/\/127\.0\.0\.1/);
    expect(err.message).toMatch(/self[- ]signed/);
    expect((err.cause as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED/);
  });

  test("accepted with the certificate as ca and the servername it names, which is sent as SNI", async () => {
    const before = servernames.length;
    const conn = await connect({ url: url(), tls: { ca: cert, servername: "warren.test" } });
    try {
      const ch = await conn.openChannel();
      const { queue } = await ch.queueDeclare("", { exclusive: true });
      await ch.publish("", queue, "over tls");
      const m = await eventually(() => ch.get(queue, { noAck: true }).then((x) => x ?? undefined), "the message");
      expect(m.body.toString()).toBe("over tls");
      expect(servernames.slice(before)).toEqual(["warren.test"]);
    } finally {
      await conn.close();
    }
  });

  test("the servername is what is verified: the right ca but a name the certificate does not carry is refused", async () => {
    const r = await outcome(
      connect({ url: url(), tls: { ca: cert, servername: "other.test" }, connectionTimeout: 5000 }),
    );
    const err = (r as { error: ConnectionClosedError }).error;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect((err.cause as NodeJS.ErrnoException).code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    // Without a servername, the host (an IP here, which the certificate does not name) is checked.
    const r2 = await outcome(connect({ url: url(), tls: { ca: cert }, connectionTimeout: 5000 }));
    expect(((r2 as { error: ConnectionClosedError }).error.cause as NodeJS.ErrnoException).code).toBe(
      "ERR_TLS_CERT_ALTNAME_INVALID",
    );
  });

  test("verification can be turned off only explicitly (rejectUnauthorized: false)", async () => {
    const conn = await connect({ url: url(), tls: { rejectUnauthorized: false } });
    expect(conn.closed).toBe(false);
    await conn.close();
  });

  test("a client certificate selects SASL EXTERNAL; this broker does not offer it: AuthenticationError, no hang", async () => {
    const r = await outcome(
      connect({ url: url(), tls: { ca: cert, servername: "warren.test", cert, key }, connectionTimeout: 5000 }),
    );
    const err = (r as { error: AuthenticationError }).error;
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.message).toMatch(/EXTERNAL/);
  });
});
