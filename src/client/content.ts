/**
 * Content assembly on one channel (spec 4.2.6 "Content Framing"): a content-bearing method
 * (basic.deliver, basic.get-ok, basic.return), then one content header, then body frames until
 * the header's body size is reached.
 *
 *   method -> header -> body* -> (complete)
 *
 * Anything out of that order is 505 UNEXPECTED_FRAME; a body longer than its header declared is
 * 501 FRAME_ERROR (both close the connection). A header declaring more than maxMessageSize is
 * refused before any of the body is buffered: the caller closes the channel with 311.
 */
import { ClassId } from "../protocol/constants.js";
import { FrameError } from "../protocol/errors.js";
import type { HeaderFrame } from "../protocol/frame.js";
import type { MethodOf } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";

export type ContentMethod = MethodOf<"basic.deliver"> | MethodOf<"basic.get-ok"> | MethodOf<"basic.return">;

/** Called with each whole message, as its three parts arrived. */
export type ContentHandler = (method: ContentMethod, properties: BasicProperties, body: Buffer) => void;

/** header(): the declared body is over maxMessageSize. */
export const TOO_LARGE = "too-large";

const EMPTY = Buffer.alloc(0);

export class ContentAssembly {
  private method: ContentMethod | undefined;
  private properties: BasicProperties | undefined;
  private size = 0;
  private chunks: Buffer[] = [];
  private received = 0;

  constructor(
    private readonly channel: number,
    private readonly maxMessageSize: () => number,
    private readonly onContent: ContentHandler,
  ) {}

  /** A content-bearing method came: its header and body are expected next. */
  get expecting(): boolean {
    return this.method !== undefined;
  }

  begin(m: ContentMethod): void {
    this.method = m;
  }

  /** The content header; TOO_LARGE when its body may not be buffered (nothing is kept then). */
  header(frame: HeaderFrame): typeof TOO_LARGE | undefined {
    if (this.method === undefined || this.properties !== undefined)
      throw new FrameError(505, `content header on channel ${this.channel} without a method before it`);
    if (frame.classId !== ClassId.basic)
      throw new FrameError(505, `content header for class ${frame.classId}, expected basic (${ClassId.basic})`);
    if (frame.bodySize > this.maxMessageSize()) return TOO_LARGE;
    this.properties = frame.properties;
    this.size = frame.bodySize;
    if (frame.bodySize === 0) this.complete(EMPTY);
    return undefined;
  }

  /** A body frame; the message is complete with its last byte. A single-frame body is the frame's own bytes, not a copy. */
  body(payload: Buffer): void {
    if (this.properties === undefined)
      throw new FrameError(505, `content body on channel ${this.channel} without a header before it`);
    const received = this.received + payload.length;
    if (received > this.size)
      throw new FrameError(
        501,
        `content body of ${received}+ bytes is longer than the ${this.size} its header declared`,
      );
    if (received === this.size && this.chunks.length === 0) return this.complete(payload);
    this.chunks.push(payload);
    this.received = received;
    if (received === this.size) this.complete(Buffer.concat(this.chunks, received));
  }

  private complete(body: Buffer): void {
    const method = this.method!;
    const properties = this.properties!;
    this.reset();
    this.onContent(method, properties, body);
  }

  /** Drop a message half assembled (the channel went; the broker requeues the delivery). */
  reset(): void {
    this.method = undefined;
    this.properties = undefined;
    this.size = 0;
    this.received = 0;
    if (this.chunks.length > 0) this.chunks = [];
  }
}
