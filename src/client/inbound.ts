/**
 * The read side of a connection's socket: chunks in, frames out through the bounded parser
 * (protocol/frame.ts), each traced on warren:frame:in; and read pauses.
 *
 * Read pauses: a consumer iterator whose buffer is full stops the reading, and TCP flow control
 * then stops the broker's deliveries. Counted, so pauses nest. One pauses the socket only
 * while the host allows it (not while the connection closes, when close-ok must be read, nor
 * while recovery restores channels, whose replies must be read); `reapply` makes it take
 * effect afterwards.
 */
import type { Duplex } from "node:stream";
import { FrameError } from "../protocol/errors.js";
import { FrameParser, type Frame } from "../protocol/frame.js";
import { frameIn } from "./diagnostics.js";

export interface InboundHost {
  /** Whether frames are wanted: not once the connection is closed or has lost this socket. */
  reading(): boolean;
  /** Whether a read pause may pause the socket now. */
  canPause(): boolean;
  /** Bytes arrived (the peer is alive; what they set off leaves together, see outbound.ts). */
  received(): void;
  /** One frame; throws FrameError when it breaks the protocol. */
  frame(frame: Frame): void;
  protocolError(e: FrameError): void;
  drained(): void;
  /** The socket failed, ended or closed. */
  gone(err: Error | undefined): void;
}

export class Inbound {
  private socket: Duplex | undefined;
  private parser: FrameParser;
  private pauses = 0;
  /** Bytes read, from every socket this has read (stats.ts). */
  bytes = 0;

  /** `owner` is what the frame:in diagnostics channel names as the connection. */
  constructor(
    private readonly owner: object,
    private readonly host: InboundHost,
  ) {
    this.parser = new FrameParser(0);
  }

  /** Bytes of a frame received so far but not yet complete. */
  get buffered(): number {
    return this.parser.buffered;
  }

  /** The largest frame accepted, once frame_max is negotiated. */
  set maxFrameSize(n: number) {
    this.parser.maxFrameSize = n;
  }

  /**
   * Read `socket` from now on, from its first byte (a fresh parser, frames up to
   * `maxFrameSize`), and nothing more of the one before. Each listener checks that its socket is
   * still the one read: late events of an earlier socket (its "close" after its "error") must
   * not touch this one. The "error" listener stays, so a late error is never an uncaught exception.
   */
  attach(socket: Duplex, maxFrameSize: number): void {
    this.socket = socket;
    this.parser = new FrameParser(maxFrameSize);
    socket.on("data", (chunk: Buffer) => this.socket === socket && this.onData(chunk));
    socket.on("drain", () => this.socket === socket && this.host.drained());
    socket.on("error", (err: Error) => this.socket === socket && this.host.gone(err));
    socket.on("close", () => this.socket === socket && this.host.gone(undefined));
    socket.on("end", () => this.socket === socket && this.host.gone(undefined));
  }

  /** The socket is given up on: nothing more of it is read (late events included). */
  detach(): void {
    this.socket = undefined;
  }

  private onData(chunk: Buffer): void {
    const socket = this.socket;
    this.bytes += chunk.length;
    this.host.received();
    this.reapply(); // paused: this chunk was a heartbeat tick's peek
    if (!this.host.reading()) return;
    // Before the first frame, a broker that speaks another protocol version answers with its
    // own header (spec 4.2.2); 'A' is no frame type, so it can only be that.
    if (this.parser.buffered === 0 && chunk[0] === 0x41 /* 'A' */) {
      this.host.protocolError(
        new FrameError(
          501,
          `the broker refused protocol AMQP 0-9-1 and offered ${JSON.stringify(chunk.subarray(0, 8).toString("latin1"))}`,
        ),
      );
      return;
    }
    this.parser.push(chunk);
    try {
      let frame: Frame | undefined;
      while ((frame = this.parser.next()) !== undefined) {
        // A copy: the parser refills its frame with the next one, and a subscriber may keep it.
        if (frameIn.hasSubscribers)
          frameIn.publish({ connection: this.owner, channel: frame.channel, frame: { ...frame } });
        this.host.frame(frame);
        // A frame may have closed the connection, or lost this socket.
        if (!this.host.reading() || this.socket !== socket) return;
      }
    } catch (e) {
      if (e instanceof FrameError) this.host.protocolError(e);
      else throw e; // a bug in warren itself: let it surface
    }
  }

  pause(): void {
    if (this.pauses++ === 0 && this.host.canPause()) this.socket?.pause();
  }

  unpause(): void {
    if (this.pauses > 0 && --this.pauses === 0) this.socket?.resume();
  }

  /**
   * A heartbeat tick: a paused socket still reads one chunk, so that a close from the broker, the
   * end of the socket or a silent peer is noticed even while a consumer iterator is behind
   * (memory grows by at most a chunk per tick).
   */
  peek(): void {
    if (this.pauses > 0) this.socket?.resume();
  }

  /** Pause again if paused by a consumer: after a chunk read by a peek, or once pausing is allowed again. */
  reapply(): void {
    if (this.pauses > 0 && this.host.canPause()) this.socket?.pause();
  }

  /** Read whatever the pauses say (closing: confirms and close-ok must be read). */
  resume(): void {
    this.socket?.resume();
  }
}
