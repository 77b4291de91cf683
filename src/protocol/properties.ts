/**
 * The 14 basic content properties (spec class basic, "fields" of the content header) and the
 * property-flags word that says which are present (4.2.6.1): bit 15 is the first property,
 * bit 14 the second, and so on; bit 0 set means another flags word follows (never needed for
 * basic, which has 14, but a peer may still set it, so decoding honours it).
 */
import { encodeTable, decodeTable, MAX_DATE_SECONDS, type FieldTable } from "./table.js";
import type { Reader } from "./reader.js";
import { put16, type Writer } from "./writer.js";
import { FrameError } from "./errors.js";

/** The basic class's content properties (spec 1.8), all optional: what a publish sets and a delivery carries. */
export interface BasicProperties {
  /** MIME content type, e.g. "text/plain". */
  contentType?: string | undefined;
  /** MIME content encoding, e.g. "gzip". */
  contentEncoding?: string | undefined;
  /** Application headers; see table.ts for how JS values map to field types. */
  headers?: FieldTable | undefined;
  /** 1 = transient, 2 = persistent. */
  deliveryMode?: number | undefined;
  /**
   * 0-255 on the wire. A classic queue honours it up to its x-max-priority (1-255; 0-9 advised),
   * and without one, not at all. A quorum queue on RabbitMQ 4.3 honours 0-31 (higher counts as
   * 31; a message without one counts as 4; seen on 4.3.6), on 4.0-4.2 two levels (above 4, and
   * the rest), on 3.x none; on 4.x it refuses x-max-priority.
   */
  priority?: number | undefined;
  correlationId?: string | undefined;
  replyTo?: string | undefined;
  /** Per-message TTL in milliseconds, as a string (RabbitMQ's rule). */
  expiration?: string | undefined;
  messageId?: string | undefined;
  /** Whole seconds on the wire. */
  timestamp?: Date | undefined;
  type?: string | undefined;
  userId?: string | undefined;
  appId?: string | undefined;
  /** Deprecated in 0-9-1; carried for completeness. */
  clusterId?: string | undefined;
}

/** Property names in flag order (bit 15 first). */
export const PROPERTY_NAMES = [
  "contentType",
  "contentEncoding",
  "headers",
  "deliveryMode",
  "priority",
  "correlationId",
  "replyTo",
  "expiration",
  "messageId",
  "timestamp",
  "type",
  "userId",
  "appId",
  "clusterId",
] as const satisfies readonly (keyof BasicProperties)[];

/** @internal Writes the flags word and the present properties. */
export function encodeProperties(w: Writer, p: BasicProperties): void {
  w.ensure(2);
  const flagsAt = w.mark();
  w.pos += 2;
  let flags = 0;
  if (p.contentType !== undefined) {
    flags |= 0x8000;
    w.shortstr(p.contentType, "contentType");
  }
  if (p.contentEncoding !== undefined) {
    flags |= 0x4000;
    w.shortstr(p.contentEncoding, "contentEncoding");
  }
  if (p.headers !== undefined) {
    flags |= 0x2000;
    encodeTable(w, p.headers, "headers");
  }
  if (p.deliveryMode !== undefined) {
    flags |= 0x1000;
    w.octet(p.deliveryMode, "deliveryMode");
  }
  if (p.priority !== undefined) {
    flags |= 0x0800;
    w.octet(p.priority, "priority");
  }
  if (p.correlationId !== undefined) {
    flags |= 0x0400;
    w.shortstr(p.correlationId, "correlationId");
  }
  if (p.replyTo !== undefined) {
    flags |= 0x0200;
    w.shortstr(p.replyTo, "replyTo");
  }
  if (p.expiration !== undefined) {
    flags |= 0x0100;
    w.shortstr(p.expiration, "expiration");
  }
  if (p.messageId !== undefined) {
    flags |= 0x0080;
    w.shortstr(p.messageId, "messageId");
  }
  if (p.timestamp !== undefined) {
    flags |= 0x0040;
    if (!(p.timestamp instanceof Date) || Number.isNaN(p.timestamp.getTime()) || p.timestamp.getTime() < 0) {
      throw new TypeError("timestamp must be a valid Date at or after 1970");
    }
    w.longlong(Math.floor(p.timestamp.getTime() / 1000), "timestamp");
  }
  if (p.type !== undefined) {
    flags |= 0x0020;
    w.shortstr(p.type, "type");
  }
  if (p.userId !== undefined) {
    flags |= 0x0010;
    w.shortstr(p.userId, "userId");
  }
  if (p.appId !== undefined) {
    flags |= 0x0008;
    w.shortstr(p.appId, "appId");
  }
  if (p.clusterId !== undefined) {
    flags |= 0x0004;
    w.shortstr(p.clusterId, "clusterId");
  }
  put16(w.buf, w.at(flagsAt), flags);
}

/** @internal */
export function decodeProperties(r: Reader): BasicProperties {
  const flags = r.short();
  let more = flags & 1;
  while (more) more = r.short() & 1; // continuation words: basic defines no 15th property
  const p: BasicProperties = {};
  if (flags === 0) return p;
  if (flags & 0x8000) p.contentType = r.shortstr();
  if (flags & 0x4000) p.contentEncoding = r.shortstr();
  if (flags & 0x2000) p.headers = decodeTable(r);
  if (flags & 0x1000) p.deliveryMode = r.octet();
  if (flags & 0x0800) p.priority = r.octet();
  if (flags & 0x0400) p.correlationId = r.shortstr();
  if (flags & 0x0200) p.replyTo = r.shortstr();
  if (flags & 0x0100) p.expiration = r.shortstr();
  if (flags & 0x0080) p.messageId = r.shortstr();
  if (flags & 0x0040) {
    const secs = r.longlong();
    // Past 8.64e12 s (year 275760) a Date is Invalid: refuse rather than hand out a lost value.
    if (secs > MAX_DATE_SECONDS)
      throw new FrameError(502, `content header timestamp ${secs} s is beyond the range of a Date`);
    p.timestamp = new Date(secs * 1000);
  }
  if (flags & 0x0020) p.type = r.shortstr();
  if (flags & 0x0010) p.userId = r.shortstr();
  if (flags & 0x0008) p.appId = r.shortstr();
  if (flags & 0x0004) p.clusterId = r.shortstr();
  if (flags & 0x0002) throw new FrameError(502, "content header sets an undefined property flag (bit 1)");
  return p;
}
