/**
 * A scripted fake AMQP server, for what a real broker will not do on request: malformed
 * frames, silence, resets mid-frame, odd tune values. Everything else is tested against
 * RabbitMQ itself.
 *
 *   const server = await startFakeServer(async (conn) => {
 *     await standardHandshake(conn, { heartbeat: 1 });
 *     await conn.send(rawFrame(1, 0, Buffer.from([0, 10])));   // truncated method payload
 *   });
 *   const conn = await connect(server.url());
 *   ...
 *   await server.close();
 *
 * Bytes are built and parsed by hand (./amqp-bytes.ts, re-exported here), not with
 * src/protocol.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import {
  Connection,
  Cursor,
  FRAME_END,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  PROTOCOL_HEADER,
  asMethod,
  connectionCloseFrame,
  longstr,
  methodFrame,
  shortstr,
  table,
  u16,
  u32,
  u8,
  type MethodFrame,
  type RawFrame,
  type TableInput,
  type TableValue,
} from "./amqp-bytes.js";

export * from "./amqp-bytes.js";

// ---------------------------------------------------------------------------------------
// The server.

/** Frame-level reading and raw writing over one TCP socket; both ends of a test use it. */
export interface FrameSocket {
  readonly socket: Socket;
  /** Writes raw bytes; resolves once they are handed to the kernel. */
  send(buf: Buffer): Promise<void>;
  /** Everything received and not read yet, or else the next chunk; rejects once the peer has gone. */
  read(): Promise<Buffer>;
  /** The next frame (any type); rejects if the peer goes first or the frame-end octet is wrong. */
  readFrame(): Promise<RawFrame>;
  /** The next method frame, skipping heartbeats; rejects on a header or body frame. */
  readMethod(): Promise<MethodFrame>;
  /** The next method frame, which must be classId.methodId (else rejects, naming what came). */
  expectMethod(classId: number, methodId: number): Promise<MethodFrame>;
  /** Bytes received and not read yet. */
  readonly available: number;
  /** Total bytes received. */
  readonly receivedBytes: number;
  /** Sends FIN (after what was sent). */
  end(): void;
  /** Closes the socket at once (FIN, unsent data dropped). */
  destroy(): void;
  /** Closes the socket with a TCP RST. */
  reset(): void;
  /** Resolves when the socket has closed, either way (never rejects). */
  readonly closed: Promise<void>;
  /** True once the peer has sent FIN or the socket closed. */
  readonly peerGone: boolean;
  /** The socket's error, if it had one (e.g. ECONNRESET). */
  readonly error: NodeJS.ErrnoException | undefined;
}

/** The server's end of one connection to the fake server. */
export interface FakeConnection extends FrameSocket {
  /** The first 8 bytes the client sent (normally PROTOCOL_HEADER). */
  readonly header: Buffer;
}

export interface FakeServer {
  readonly port: number;
  /** amqp://guest:guest@127.0.0.1:<port> (default vhost), plus `?query` (e.g. "heartbeat=1") if given. */
  url(query?: string): string;
  /** Every connection whose protocol header arrived, in order. */
  readonly connections: readonly FakeConnection[];
  /** Waits for every script started so far; rejects with the first script error. */
  done(): Promise<void>;
  /** Errors thrown by scripts so far (they never become unhandled rejections). */
  readonly errors: readonly unknown[];
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

export type FakeScript = (conn: FakeConnection) => Promise<void>;

/**
 * Listens on 127.0.0.1:0. For each connection, reads the 8-byte protocol header and runs
 * `script(conn)`. When the script returns, the connection is left as it is (silence is a
 * test too); close() ends everything.
 */
export async function startFakeServer(script: FakeScript): Promise<FakeServer> {
  const connections: FakeConn[] = [];
  const sockets = new Set<Socket>();
  const runs: Promise<void>[] = [];
  const errors: unknown[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const conn = new FakeConn(socket);
    runs.push(
      conn
        .readHeader()
        .then(
          () => {
            connections.push(conn);
            return script(conn);
          },
          () => undefined, // the client left before sending a header: nothing to run
        )
        // Kept for done(), never left unhandled: a script that loses its client mid-read is
        // only an error if the test says so by awaiting done().
        .catch((err: unknown) => {
          errors.push(err);
        }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: (query) => `amqp://guest:guest@127.0.0.1:${port}${query !== undefined ? `?${query}` : ""}`,
    connections,
    async done() {
      let seen = 0;
      // Scripts may still be starting while we wait; loop until no new ones appeared.
      while (seen < runs.length) {
        seen = runs.length;
        await Promise.all(runs);
      }
      if (errors.length > 0) throw errors[0];
    },
    errors,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

class SocketFrames implements FrameSocket {
  readonly closed: Promise<void>;
  peerGone = false;
  error: NodeJS.ErrnoException | undefined;
  receivedBytes = 0;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private waiter: (() => void) | undefined;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
      this.receivedBytes += chunk.length;
      this.wake();
    });
    socket.on("end", () => {
      this.peerGone = true;
      this.wake();
    });
    // An error (ECONNRESET from a peer that resets) ends the connection like a close does;
    // it is kept for the test to look at.
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.error ??= err;
    });
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        this.peerGone = true;
        this.wake();
        resolve();
      });
    });
  }

  get available(): number {
    return this.bufferedBytes;
  }

  send(buf: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed || this.socket.writableEnded) {
        reject(new Error("cannot send, the connection is closed"));
        return;
      }
      this.socket.write(buf, (err) => (err ? reject(err) : resolve()));
    });
  }

  async read(): Promise<Buffer> {
    await this.waitFor(1);
    const all = Buffer.concat(this.buffered);
    this.buffered = [];
    this.bufferedBytes = 0;
    return all;
  }

  async readFrame(): Promise<RawFrame> {
    await this.waitFor(7);
    const head = this.peek(7);
    const size = head.readUInt32BE(3);
    const whole = await this.readExactly(size + 8);
    const end = whole[size + 7];
    if (end !== FRAME_END) throw new Error(`frame-end octet is 0x${(end ?? 0).toString(16)}, not 0xce`);
    return { type: whole.readUInt8(0), channel: whole.readUInt16BE(1), payload: whole.subarray(7, 7 + size) };
  }

  async readMethod(): Promise<MethodFrame> {
    for (;;) {
      const frame = await this.readFrame();
      if (frame.type === FRAME_HEARTBEAT) continue;
      return asMethod(frame);
    }
  }

  async expectMethod(classId: number, methodId: number): Promise<MethodFrame> {
    const m = await this.readMethod();
    if (m.classId !== classId || m.methodId !== methodId) {
      throw new Error(`expected method ${classId}.${methodId}, got ${m.classId}.${m.methodId} on channel ${m.channel}`);
    }
    return m;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  reset(): void {
    if (this.socket.destroyed) return;
    this.socket.resetAndDestroy();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private async waitFor(n: number): Promise<void> {
    while (this.bufferedBytes < n) {
      if (this.peerGone) {
        throw new Error(`the peer closed the connection (wanted ${n} bytes, have ${this.bufferedBytes})`, {
          cause: this.error,
        });
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private peek(n: number): Buffer {
    if (this.buffered.length > 1) this.buffered = [Buffer.concat(this.buffered)];
    return (this.buffered[0] ?? Buffer.alloc(0)).subarray(0, n);
  }

  protected async readExactly(n: number): Promise<Buffer> {
    await this.waitFor(n);
    const all = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered);
    const out = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return out;
  }
}

class FakeConn extends SocketFrames implements FakeConnection {
  header: Buffer = Buffer.alloc(0);

  async readHeader(): Promise<void> {
    this.header = await this.readExactly(8);
  }
}

/**
 * A raw TCP client with the same frame-reading methods, for tests that play the client by
 * hand (through the proxy, or against the fake server).
 */
export function rawConnect(port: number, host = "127.0.0.1"): Promise<FrameSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const frames = new SocketFrames(socket);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(frames);
    });
    socket.once("error", reject);
  });
}

// ---------------------------------------------------------------------------------------
// Handshakes.

export interface HandshakeOptions {
  /** Proposed in connection.tune; defaults 131072, 2047, 0 (no heartbeats). */
  frameMax?: number;
  channelMax?: number;
  heartbeat?: number;
  /** Replaces the default server-properties table. */
  serverProperties?: TableInput;
  /** Defaults "PLAIN AMQPLAIN". */
  mechanisms?: string;
  /** Defaults "en_US". */
  locales?: string;
}

export interface HandshakeResult {
  clientProperties: { [key: string]: TableValue };
  mechanism: string;
  response: Buffer;
  locale: string;
  /** What the client answered in connection.tune-ok. */
  channelMax: number;
  frameMax: number;
  heartbeat: number;
  /** The virtual host from connection.open. */
  vhost: string;
}

/** What RabbitMQ 3.x announces, trimmed to what clients look at. */
export const DEFAULT_SERVER_PROPERTIES: TableInput = {
  product: "warren fake server",
  version: "0.0.0",
  platform: "Node.js",
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: true,
    "basic.nack": true,
    consumer_cancel_notify: true,
    "connection.blocked": true,
    consumer_priorities: true,
    authentication_failure_close: true,
    per_consumer_qos: true,
    direct_reply_to: true,
  },
};

/**
 * The server's side of connection setup (spec 2.2.4, section 1.4.2):
 *
 *   S: connection.start  (version-major 0, version-minor 9, server-properties, mechanisms, locales)
 *   C: connection.start-ok (client-properties, mechanism, response, locale)
 *   S: connection.tune   (channel-max, frame-max, heartbeat)
 *   C: connection.tune-ok (channel-max, frame-max, heartbeat)
 *   C: connection.open   (virtual-host, reserved-1, reserved-2)
 *   S: connection.open-ok (reserved-1)
 *
 * Heartbeat frames from the client are skipped. Returns what the client said.
 */
export async function standardHandshake(
  conn: FakeConnection,
  options: HandshakeOptions = {},
): Promise<HandshakeResult> {
  await conn.send(
    methodFrame(
      0,
      Connection.classId,
      Connection.start,
      Buffer.concat([
        u8(0),
        u8(9),
        table(options.serverProperties ?? DEFAULT_SERVER_PROPERTIES),
        longstr(options.mechanisms ?? "PLAIN AMQPLAIN"),
        longstr(options.locales ?? "en_US"),
      ]),
    ),
  );
  const startOk = new Cursor((await conn.expectMethod(Connection.classId, Connection.startOk)).args);
  const clientProperties = startOk.table();
  const mechanism = startOk.shortstr();
  const response = Buffer.from(startOk.longstr());
  const locale = startOk.shortstr();

  await conn.send(
    methodFrame(
      0,
      Connection.classId,
      Connection.tune,
      Buffer.concat([u16(options.channelMax ?? 2047), u32(options.frameMax ?? 131072), u16(options.heartbeat ?? 0)]),
    ),
  );
  const tuneOk = new Cursor((await conn.expectMethod(Connection.classId, Connection.tuneOk)).args);
  const channelMax = tuneOk.u16();
  const frameMax = tuneOk.u32();
  const heartbeat = tuneOk.u16();

  const open = new Cursor((await conn.expectMethod(Connection.classId, Connection.open)).args);
  const vhost = open.shortstr();
  await conn.send(methodFrame(0, Connection.classId, Connection.openOk, shortstr("")));

  return { clientProperties, mechanism, response, locale, channelMax, frameMax, heartbeat, vhost };
}

export interface ClientHandshakeOptions {
  username?: string;
  password?: string;
  vhost?: string;
  /** Answered in tune-ok; by default the server's channel-max and frame-max, and heartbeat 0. */
  channelMax?: number;
  frameMax?: number;
  heartbeat?: number;
}

export interface ClientHandshakeResult {
  versionMajor: number;
  versionMinor: number;
  serverProperties: { [key: string]: TableValue };
  mechanisms: string;
  locales: string;
  /** What the server proposed in connection.tune. */
  tune: { channelMax: number; frameMax: number; heartbeat: number };
}

/**
 * The client's side of connection setup, by hand, for tests that must see every byte (through
 * the proxy, or against the fake server): protocol header, start-ok with PLAIN, tune-ok, open,
 * then waits for open-ok.
 */
export async function clientHandshake(
  sock: FrameSocket,
  options: ClientHandshakeOptions = {},
): Promise<ClientHandshakeResult> {
  await sock.send(PROTOCOL_HEADER);
  const start = new Cursor((await sock.expectMethod(Connection.classId, Connection.start)).args);
  const versionMajor = start.u8();
  const versionMinor = start.u8();
  const serverProperties = start.table();
  const mechanisms = start.longstr().toString("utf8");
  const locales = start.longstr().toString("utf8");

  const user = options.username ?? "guest";
  const password = options.password ?? "guest";
  await sock.send(
    methodFrame(
      0,
      Connection.classId,
      Connection.startOk,
      Buffer.concat([
        table({ product: "warren raw test client", capabilities: { "connection.blocked": true } }),
        shortstr("PLAIN"),
        longstr(`\u0000${user}\u0000${password}`),
        shortstr("en_US"),
      ]),
    ),
  );

  const tuneArgs = new Cursor((await sock.expectMethod(Connection.classId, Connection.tune)).args);
  const tune = { channelMax: tuneArgs.u16(), frameMax: tuneArgs.u32(), heartbeat: tuneArgs.u16() };
  await sock.send(
    methodFrame(
      0,
      Connection.classId,
      Connection.tuneOk,
      Buffer.concat([
        u16(options.channelMax ?? tune.channelMax),
        u32(options.frameMax ?? tune.frameMax),
        u16(options.heartbeat ?? 0),
      ]),
    ),
  );
  // connection.open: virtual-host, reserved-1 (shortstr), reserved-2 (bit, in its own octet).
  await sock.send(
    methodFrame(
      0,
      Connection.classId,
      Connection.open,
      Buffer.concat([shortstr(options.vhost ?? "/"), shortstr(""), u8(0)]),
    ),
  );
  await sock.expectMethod(Connection.classId, Connection.openOk);
  return { versionMajor, versionMinor, serverProperties, mechanisms, locales, tune };
}

/**
 * The client's orderly close: connection.close 200, wait for close-ok, then end the socket
 * (the closing peer closes the socket, spec 2.2.4; RabbitMQ waits for it).
 */
export async function clientClose(sock: FrameSocket): Promise<void> {
  await sock.send(connectionCloseFrame(200, "Goodbye"));
  for (;;) {
    const frame = await sock.readFrame();
    if (frame.type !== FRAME_METHOD) continue;
    const m = asMethod(frame);
    if (m.classId === Connection.classId && m.methodId === Connection.closeOk) break;
  }
  sock.end();
}
