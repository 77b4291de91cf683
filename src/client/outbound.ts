/**
 * The write path every channel of a connection shares: frames are encoded into one slab
 * Writer, and leave the process in as few socket writes as keep latency low.
 *
 * When bytes leave (afterWrite, flushTick):
 * - The first frames of an event-loop turn are written at once, so a lone publish is on the
 *   wire before publish() returns. Not in a turn that reads the socket: what frames arriving
 *   together set off (publishes answering confirms, acks of deliveries) leaves together.
 * - What follows in the turn coalesces and leaves at its end (process.nextTick, which runs
 *   after the microtask queue, so a loop of awaited publishes still writes once per FLUSH_AT),
 *   or at once past FLUSH_AT pending bytes.
 * - Deferred acks (delivery-tags.ts) may wait up to ACK_DELAY ms more while every source is below
 *   its batch; reaching a batch flushes at the end of the turn.
 * The frames of one publish are always contiguous, and a bad argument writes nothing.
 *
 * Backpressure (writable): resolved while the socket is below its high-water mark and the
 * broker has not blocked the connection (connection.blocked); else one promise per drain.
 */
import type { Duplex } from "node:stream";
import { FRAME_MIN_SIZE, FrameType, PROTOCOL_HEADER } from "../protocol/constants.js";
import { encodeHeartbeatFrame, encodeMethodFrame } from "../protocol/frame.js";
import type { Method } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";
import { encodePublish } from "../protocol/publish.js";
import { Writer } from "../protocol/writer.js";
import type { DeferredAcks, AckWriter } from "./delivery-tags.js";
import { frameOut, traceContent } from "./diagnostics.js";
import type { AmqpError } from "./errors.js";
import { RESOLVED, Waiters } from "./wait.js";

/** Flush at once past this many pending bytes instead of waiting for the end of the turn. */
const FLUSH_AT = 64 * 1024;
/** Longest deferred acks wait beyond the end of their turn (flushTick). */
const ACK_DELAY = 1;

export class Outbound implements AckWriter {
  /** The negotiated frame_max the encoders split bodies by (0: no limit). */
  frameMax = FRAME_MIN_SIZE;
  /** Anything written since the heartbeat last asked (takeWritten). */
  private written = false;
  /** Bytes handed to the socket, to every socket this has written (stats.ts). */
  bytes = 0;
  private readonly writer = new Writer();
  private socket!: Duplex;
  /** No socket, or it was dropped: nothing is written until attach(). */
  private dropped = true;
  private flushScheduled = false;
  /** True from a read of the socket until the event loop's check phase (readTurn). */
  private reading = false;
  private readonly endReading = () => {
    this.reading = false;
  };
  private deferred: DeferredAcks[] = [];
  private ackTimer: NodeJS.Timeout | undefined;
  private readonly ackTimerFired = () => {
    this.ackTimer = undefined;
    this.flush();
  };
  private readonly flushNow = () => this.flushTick();
  private readonly drained = new Waiters();
  /** The one promise every publish waiting for the current drain shares (no closure per publish). */
  private drainPromise: Promise<void> | undefined;
  /** Set between connection.blocked and connection.unblocked: publishes wait. */
  private blocked = false;
  private readonly unblocked = new Waiters();

  /** A plain TCP socket, whose write() copies into the kernel when nothing is buffered (see writeOut). */
  private reuseSlabs = false;

  /**
   * `owner` is what the frame:out diagnostics channel names as the connection. `mayDeferAcks`
   * tells whether deferred acks may wait (the connection is open).
   */
  constructor(
    private readonly owner: object,
    private readonly mayDeferAcks: () => boolean,
  ) {}

  /**
   * Write to `socket` from now on, with frames of at most frame-min-size until tune says more
   * (spec 4.2.3). `reuseSlabs`: it is a plain TCP socket (see writeOut).
   */
  attach(socket: Duplex, reuseSlabs: boolean): void {
    this.socket = socket;
    this.reuseSlabs = reuseSlabs;
    this.frameMax = FRAME_MIN_SIZE;
    this.dropped = false;
  }

  /** Encode one method frame; it leaves with the next flush. Throws TypeError/RangeError on a bad argument, writing nothing. */
  method(channel: number, m: Method): void {
    if (this.dropped) return;
    this.encodeMethod(channel, m);
    this.afterWrite();
  }

  encodeMethod(channel: number, m: Method): void {
    encodeMethodFrame(this.writer, channel, m, this.frameMax);
    if (frameOut.hasSubscribers)
      frameOut.publish({ connection: this.owner, channel, frame: { type: FrameType.Method, channel, method: m } });
  }

  /** basic.publish with its content: method, header and body frames, contiguous; all or nothing. */
  publish(
    channel: number,
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    properties: BasicProperties,
    body: Uint8Array,
  ): void {
    if (this.dropped) return;
    const w = this.writer;
    // Past the slab's free space: send what is pending first rather than grow the slab, which
    // would copy the pending bytes only to send them together.
    if (w.length > 0 && w.pos + body.length + 512 > w.buf.length) this.writeOut();
    encodePublish(w, channel, exchange, routingKey, mandatory, properties, body, this.frameMax);
    if (frameOut.hasSubscribers)
      traceContent(
        this.owner,
        channel,
        { name: "basic.publish", exchange, routingKey, mandatory, immediate: false },
        properties,
        body,
        this.frameMax,
      );
    this.afterWrite();
  }

  /** A heartbeat frame, written now. */
  heartbeat(): void {
    if (this.dropped) return;
    encodeHeartbeatFrame(this.writer);
    if (frameOut.hasSubscribers)
      frameOut.publish({ connection: this.owner, channel: 0, frame: { type: FrameType.Heartbeat, channel: 0 } });
    this.flush();
  }

  /** Whether anything was written since the last call (heartbeats are sent only when not). */
  takeWritten(): boolean {
    const w = this.written;
    this.written = false;
    return w;
  }

  /** The connection read its socket in this turn: what the frames read set off leaves at the end of it. */
  readTurn(): void {
    if (!this.reading) {
      this.reading = true;
      setImmediate(this.endReading);
    }
  }

  deferAcks(source: DeferredAcks): void {
    this.deferred.push(source);
    this.scheduleFlush();
  }

  scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushNow);
    }
  }

  /**
   * The turn's first frames leave now, the rest at its end (flushTick) or past FLUSH_AT. A write
   * within the turn (here, or for slab space in publish) is writeOut, never flush: flush ends
   * the turn's coalescing, and the next publish would go out alone, a syscall for one publish.
   */
  private afterWrite(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushNow);
      if (!this.reading) {
        this.writeOut();
        return;
      }
    }
    if (this.writer.length >= FLUSH_AT) this.writeOut();
  }

  /** The end-of-turn flush: deferred acks below their batch wait up to ACK_DELAY; everything else leaves now. */
  private flushTick(): void {
    if (this.deferred.length > 0 && this.mayDeferAcks() && this.deferred.every((h) => h.belowBatch)) {
      this.flushScheduled = false;
      this.ackTimer ??= setTimeout(this.ackTimerFired, ACK_DELAY);
      this.writeOut();
      return;
    }
    this.flush();
  }

  /** Write out everything pending, deferred acks included. */
  flush(): void {
    this.flushScheduled = false;
    if (this.ackTimer !== undefined) {
      clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
    }
    if (this.dropped) return;
    const sources = this.deferred;
    if (sources.length > 0) {
      this.deferred = [];
      for (const s of sources) s.writeDeferred();
    }
    this.writeOut();
  }

  /** Hand the writer's bytes, if any, to the socket in one write. */
  private writeOut(): void {
    if (this.writer.length === 0) return;
    this.written = true;
    const socket = this.socket;
    const bytes = this.writer.take();
    this.bytes += bytes.length;
    socket.write(bytes);
    // A plain TCP socket with nothing left buffered has copied every byte into the kernel, so
    // the writer may write over them: one slab reused instead of a new 64 KiB per 64 KiB sent.
    // TLS and injected transports may still hold the bytes: they always get fresh slabs.
    if (this.reuseSlabs && socket.writableLength === 0) this.writer.release();
  }

  /** Resolved while the socket can take more; else a promise for the next 'drain' (or connection.unblocked). */
  writable(): Promise<void> {
    if (this.blocked) return this.unblocked.wait("publish (waiting for connection.unblocked)");
    if (!this.socket.writableNeedDrain) return RESOLVED;
    return (this.drainPromise ??= this.drained.wait("publish (waiting for the socket to drain)"));
  }

  /** Whether writable() would wait now: the socket is over its high-water mark, or the broker has blocked the connection. */
  get mustWait(): boolean {
    return !this.dropped && (this.blocked || this.socket.writableNeedDrain);
  }

  onDrain(): void {
    this.drainPromise = undefined;
    this.drained.wake();
  }

  setBlocked(blocked: boolean): void {
    this.blocked = blocked;
    if (!blocked) this.unblocked.wake();
  }

  /**
   * Let out what the writer still holds (a close or close-ok owed to the broker), then end the
   * socket and destroy it soon after. Publishes waiting for drain or unblock fail with the
   * reason: their bytes were still queued (or unread by a blocked broker) when the socket
   * went, so they must never resolve as if sent.
   */
  drop(reason: AmqpError): void {
    this.dropped = true;
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.deferred = [];
    this.drainPromise = undefined;
    this.drained.fail(reason);
    this.unblocked.fail(reason);
    const s = this.socket as Duplex | undefined;
    if (s === undefined) return; // never attached
    if (this.writer.length > 0 && s.writable) s.end(this.writer.take());
    else {
      this.writer.take();
      s.end();
    }
    // end() lets the close frames out; destroy soon after so no socket outlives the connection.
    setImmediate(() => s.destroy()).unref();
  }

  /** The protocol header (spec 4.2.2), the first bytes of a connection. */
  protocolHeader(): void {
    this.socket.write(PROTOCOL_HEADER);
    this.bytes += PROTOCOL_HEADER.length;
  }
}
