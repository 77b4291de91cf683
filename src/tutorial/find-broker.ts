/**
 * Finds a RabbitMQ to talk to, for the tutorial demo and for the tests (test/helpers/broker.ts
 * re-exports this file). In order:
 *
 *   1. AMQP_URL, if it is set: the user said where the broker is, so we trust it.
 *   2. amqp://guest:guest@127.0.0.1:5672, if something there answers the AMQP protocol
 *      header with a connection.start frame (an open port alone is not enough: anything can
 *      listen on 5672).
 *   3. A RabbitMQ container started through testcontainers, only if a Docker engine answers
 *      its /_ping and the package can be imported (it is a dev dependency, so an installed
 *      copy of warren will not have it).
 *   4. Otherwise a BrokerNotFoundError whose message says, in one paragraph, how to get one.
 *
 * Only node built-ins here, plus the dynamic import of @testcontainers/rabbitmq, named through
 * a variable so that neither the type checker nor a bundler requires the package to exist.
 */
import { existsSync } from "node:fs";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";

/** The broker a fresh `apt-get install rabbitmq-server` gives you. */
export const LOCAL_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672";

/**
 * The rabbitmqctl of the broker in use when it is not the machine's own: WARREN_RABBITMQCTL, a
 * command line split on spaces (scripts/test.sh sets "bash scripts/rabbitmq43.sh ctl single").
 */
export function rabbitmqctlFromEnv(): [file: string, ...args: string[]] | undefined {
  const command = process.env["WARREN_RABBITMQCTL"];
  return command === undefined || command === "" ? undefined : (command.split(" ") as [string, ...string[]]);
}

/** The image used when a container has to be started. */
export const RABBITMQ_IMAGE = "rabbitmq:3.13-alpine";

/** "AMQP" 0 0 9 1: the protocol header a 0-9-1 client opens with (spec 4.2.2). */
const PROTOCOL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

export interface FoundBroker {
  /** amqp:// URL including credentials. */
  readonly url: string;
  /** Where it came from. */
  readonly source: "env" | "local" | "container";
  /** Docker container id when `source` is "container". */
  readonly containerId: string | undefined;
  /** Stops the container if one was started; otherwise does nothing. Idempotent. */
  stop(): Promise<void>;
}

export interface FindBrokerOptions {
  /** Environment to read AMQP_URL and DOCKER_HOST from; defaults to process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where to look for a local broker; defaults to 127.0.0.1:5672 (with guest/guest). */
  local?: { host: string; port: number };
  /** How long each probe (AMQP header, Docker ping) may take; defaults to 3000 ms. */
  probeTimeoutMs?: number;
  /** Set to false to never start a container. */
  docker?: boolean;
  /** Told about slow steps (starting a container), e.g. to print them. */
  onProgress?: (message: string) => void;
}

/** No broker could be found or started; the message says how to get one. */
export class BrokerNotFoundError extends Error {
  override name = "BrokerNotFoundError";
}

/** Finds (or starts) a broker; see the top of this file for the order. */
export async function findBroker(options: FindBrokerOptions = {}): Promise<FoundBroker> {
  const env = options.env ?? process.env;
  const timeoutMs = options.probeTimeoutMs ?? 3000;
  const noop = async (): Promise<void> => {};

  const fromEnv = env["AMQP_URL"];
  if (fromEnv !== undefined && fromEnv !== "") {
    return { url: fromEnv, source: "env", containerId: undefined, stop: noop };
  }

  const local = options.local ?? { host: "127.0.0.1", port: 5672 };
  const localUrl = `amqp://guest:guest@${local.host}:${local.port}`;
  const localResult = await probeAmqp(local.host, local.port, timeoutMs);
  if (localResult === true) {
    return { url: localUrl, source: "local", containerId: undefined, stop: noop };
  }

  let dockerResult: string;
  if (options.docker === false) {
    dockerResult = "not tried";
  } else if (!(await dockerAnswers(env, timeoutMs))) {
    dockerResult = "no Docker engine answered";
  } else {
    const started = await startContainer(options.onProgress);
    if (typeof started !== "string") return started;
    dockerResult = started;
  }

  throw new BrokerNotFoundError(
    `No AMQP broker found (AMQP_URL is not set; ${localUrl}: ${localResult}; ` +
      `Docker: ${dockerResult}). warren's demo and its broker tests need a RabbitMQ. ` +
      `Either install and start one locally: \`sudo apt-get install -y rabbitmq-server && ` +
      `sudo rabbitmq-server -detached\` (\`bash .ci/run\` does this for you, then runs the tests); ` +
      `or point AMQP_URL at a broker you already have, e.g. ` +
      `\`AMQP_URL=amqp://user:password@host:5672/vhost npm test\`; ` +
      `or start a Docker engine, and a RabbitMQ container (${RABBITMQ_IMAGE}) will be started ` +
      `for the run through testcontainers.`,
  );
}

/**
 * Connects to host:port, sends the protocol header and waits for the first frame. Resolves
 * true if it is connection.start (a method frame on channel 0, class 10, method 10), else a
 * short reason why not. Never rejects.
 */
export function probeAmqp(host: string, port: number, timeoutMs = 3000): Promise<true | string> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    let settled = false;
    const socket: Socket = connect({ host, port });
    const finish = (result: true | string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(`no reply within ${timeoutMs} ms`), timeoutMs);
    socket.on("connect", () => socket.write(PROTOCOL_HEADER));
    socket.on("error", (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    socket.on("close", () => finish("connection closed without a reply"));
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // Frame: type(1) channel(2) size(4) payload; a method payload starts class(2) method(2).
      if (received.length < 11) return;
      const isStart =
        received[0] === 1 &&
        received.readUInt16BE(1) === 0 &&
        received.readUInt16BE(7) === 10 &&
        received.readUInt16BE(9) === 10;
      finish(isStart ? true : "it answered, but not with an AMQP 0-9-1 connection.start");
    });
  });
}

/**
 * Whether a Docker engine answers GET /_ping on DOCKER_HOST or one of the usual socket paths
 * (Linux, rootless, Docker Desktop, Colima, Rancher Desktop, Podman).
 */
export async function dockerAnswers(
  env: Readonly<Record<string, string | undefined>> = process.env,
  timeoutMs = 3000,
): Promise<boolean> {
  const dockerHost = env["DOCKER_HOST"];
  if (dockerHost !== undefined && dockerHost !== "") {
    if (dockerHost.startsWith("unix://")) return ping({ socketPath: dockerHost.slice(7) }, timeoutMs);
    if (dockerHost.startsWith("tcp://")) {
      // With TLS we cannot check without the client certificates: let testcontainers try.
      if (env["DOCKER_TLS_VERIFY"] === "1") return true;
      const u = new URL(`http://${dockerHost.slice(6)}`);
      return ping({ host: u.hostname, port: Number(u.port || 2375) }, timeoutMs);
    }
    return false;
  }
  const home = homedir();
  let uid: number | undefined;
  try {
    uid = userInfo().uid;
  } catch {
    uid = undefined;
  }
  const runtimeDir = env["XDG_RUNTIME_DIR"] ?? (uid !== undefined ? `/run/user/${uid}` : undefined);
  const candidates = [
    "/var/run/docker.sock",
    ...(runtimeDir !== undefined ? [join(runtimeDir, "docker.sock"), join(runtimeDir, "podman/podman.sock")] : []),
    join(home, ".docker/run/docker.sock"),
    join(home, ".docker/desktop/docker.sock"),
    join(home, ".colima/default/docker.sock"),
    join(home, ".rd/docker.sock"),
  ];
  for (const socketPath of candidates) {
    if (existsSync(socketPath) && (await ping({ socketPath }, timeoutMs))) return true;
  }
  return false;
}

function ping(target: { socketPath: string } | { host: string; port: number }, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ ...target, path: "/_ping", method: "GET", timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** The parts of @testcontainers/rabbitmq we use, so that its types are not needed. */
interface StartedContainer {
  getHost(): string;
  getMappedPort(port: number): number;
  getId(): string;
  stop(): Promise<unknown>;
}
interface ContainerBuilder {
  withStartupTimeout(ms: number): ContainerBuilder;
  start(): Promise<StartedContainer>;
}
type ContainerConstructor = new (image: string) => ContainerBuilder;

/** Starts a container; returns the broker, or the reason it could not. */
async function startContainer(onProgress?: (message: string) => void): Promise<FoundBroker | string> {
  const specifier = "@testcontainers/rabbitmq";
  let RabbitMQContainer: ContainerConstructor;
  try {
    const mod = (await import(specifier)) as { RabbitMQContainer?: unknown };
    if (typeof mod.RabbitMQContainer !== "function") return `${specifier} has no RabbitMQContainer`;
    RabbitMQContainer = mod.RabbitMQContainer as ContainerConstructor;
  } catch (err) {
    return `a Docker engine answered, but ${specifier} could not be loaded (${(err as Error).message}); run npm ci`;
  }
  onProgress?.(`starting a RabbitMQ container (${RABBITMQ_IMAGE}) through testcontainers...`);
  let container: StartedContainer;
  try {
    container = await new RabbitMQContainer(RABBITMQ_IMAGE).withStartupTimeout(120_000).start();
  } catch (err) {
    return `a Docker engine answered, but the container did not start (${(err as Error).message})`;
  }
  let stopped: Promise<void> | undefined;
  return {
    url: `amqp://guest:guest@${container.getHost()}:${container.getMappedPort(5672)}`,
    source: "container",
    containerId: container.getId(),
    stop: () => (stopped ??= container.stop().then(() => undefined)),
  };
}
