/**
 * Wire constants of AMQP 0-9-1 (spec section 4.2, and the reply codes of section 1.2 of the
 * generated spec / amqp0-9-1.xml "constants").
 */

/** Frame types (4.2.3). RabbitMQ uses 8 for heartbeat, not the 4 of the 0-9 drafts. */
export const FrameType = {
  Method: 1,
  Header: 2,
  Body: 3,
  Heartbeat: 8,
} as const;

/** @internal Every frame ends with this octet; anything else is a frame error (4.2.3). */
export const FRAME_END = 0xce;
/** @internal type (1) + channel (2) + size (4). */
export const FRAME_HEADER_SIZE = 7;
/** @internal Header plus the frame-end octet: what frame_max must leave room for beside a payload. */
export const FRAME_OVERHEAD = 8;
/**
 * @internal The spec's frame-min-size constant: the smallest frame_max a peer may propose, and the
 * largest frame either peer must accept before connection.tune has set frame_max.
 */
export const FRAME_MIN_SIZE = 4096;

/** @internal "AMQP" 0 0 9 1: the protocol header a client sends first (4.2.2). */
export const PROTOCOL_HEADER: Buffer = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

export const ClassId = {
  connection: 10,
  channel: 20,
  exchange: 40,
  queue: 50,
  basic: 60,
  confirm: 85,
  tx: 90,
} as const;

/**
 * Reply codes. 3xx/4xx are soft errors (close the channel), 5xx hard errors (close the
 * connection), except 403 ACCESS_REFUSED and 320 CONNECTION_FORCED which RabbitMQ sends at
 * either level.
 */
export const ReplyCode = {
  REPLY_SUCCESS: 200,
  CONTENT_TOO_LARGE: 311,
  NO_ROUTE: 312,
  NO_CONSUMERS: 313,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;

/** @internal The reply-code's name, for messages: 404 -> "NOT_FOUND". */
export function replyCodeName(code: number): string {
  for (const [name, value] of Object.entries(ReplyCode)) if (value === code) return name;
  return String(code);
}
