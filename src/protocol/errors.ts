/**
 * The two errors the protocol layer can raise. The client's richer hierarchy (channel and
 * connection closes, one class per reply code) builds on AmqpError in src/client/errors.ts.
 */

/** Base class of every error warren raises. */
export class AmqpError extends Error {
  override name = "AmqpError";
}

/**
 * The peer broke the protocol: a malformed or oversized frame, a bad frame-end octet, an
 * unknown class or method, a truncated field. `code` is the reply code the connection must be
 * closed with (spec 4.2.3 and the constants section): 501 FRAME_ERROR, 502 SYNTAX_ERROR,
 * 503 COMMAND_INVALID, 504 CHANNEL_ERROR, 505 UNEXPECTED_FRAME, 540 NOT_IMPLEMENTED.
 */
export class FrameError extends AmqpError {
  override name = "FrameError";
  readonly code: number;
  constructor(code: 501 | 502 | 503 | 504 | 505 | 540, message: string) {
    super(message);
    this.code = code;
  }
}
