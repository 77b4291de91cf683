/**
 * A dedicated encoder for the frames sent once per message: basic.publish, its content header
 * and its body frames (spec 4.2.6), written straight into the slab by index. The bytes are those
 * of encodeMethodFrame + encodeContent (test/protocol/publish.test.ts checks it); what it saves
 * is the per-field calls, range checks and size patching of the general path, and, for the
 * common ASCII exchange and routing key, a call into Buffer#write per name.
 *
 *   method frame:  1 | channel | size | 60 40 | reserved short 0 | exchange | routing-key | bits | CE
 *   header frame:  2 | channel | size | 60 | weight 0 | body-size (64 bit) | flags [+ properties] | CE
 */
import { FRAME_END, FRAME_HEADER_SIZE, FRAME_OVERHEAD, FrameType } from "./constants.js";
import { encodeBodyFrames, encodeHeaderFrame } from "./frame.js";
import type { BasicProperties } from "./properties.js";
import type { Writer } from "./writer.js";

/** A short string: ASCII by a plain loop; anything else (non-ASCII, too long, not a string) through Writer.shortstr, which also names the field in its error. */
function shortstr(w: Writer, s: string, field: string): void {
  const n = typeof s === "string" ? s.length : 256;
  if (n <= 255) {
    w.ensure(n + 1);
    const b = w.buf;
    const start = w.pos;
    let p = start + 1;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      b[p++] = c;
    }
    if (i === n) {
      b[start] = n;
      w.pos = p;
      return;
    }
  }
  w.shortstr(s, field);
}

function hasProperties(p: BasicProperties): boolean {
  return (
    p.contentType !== undefined ||
    p.contentEncoding !== undefined ||
    p.headers !== undefined ||
    p.deliveryMode !== undefined ||
    p.priority !== undefined ||
    p.correlationId !== undefined ||
    p.replyTo !== undefined ||
    p.expiration !== undefined ||
    p.messageId !== undefined ||
    p.timestamp !== undefined ||
    p.type !== undefined ||
    p.userId !== undefined ||
    p.appId !== undefined ||
    p.clusterId !== undefined
  );
}

/**
 * basic.publish + header + body frames on `channel`, contiguous. On a bad argument (a name over
 * 255 bytes, a bad property, a header over frame_max) nothing is left written and the error
 * names the field. `channel` is the caller's own (1..65535), not user input.
 */
export function encodePublish(w: Writer, channel: number, exchange: string, routingKey: string, mandatory: boolean, properties: BasicProperties, body: Uint8Array, frameMax: number): void {
  const mark = w.mark();
  try {
    w.ensure(FRAME_HEADER_SIZE + 6); // each name reserves its own room
    const b = w.buf;
    const start = w.pos;
    b[start] = FrameType.Method;
    b[start + 1] = channel >>> 8;
    b[start + 2] = channel & 0xff;
    // size at start + 3, patched below
    b[start + 7] = 0;
    b[start + 8] = 60; // class basic
    b[start + 9] = 0;
    b[start + 10] = 40; // method publish
    b[start + 11] = 0; // reserved-1 (ticket)
    b[start + 12] = 0;
    w.pos = start + 13;
    shortstr(w, exchange, "basic.publish exchange");
    shortstr(w, routingKey, "basic.publish routingKey");
    w.ensure(2);
    const bb = w.buf; // a non-ASCII name may have grown the slab
    const s = w.at(mark);
    bb[w.pos++] = mandatory ? 1 : 0; // mandatory bit 0, immediate bit 1 (never set: RabbitMQ refuses it)
    bb[w.pos++] = FRAME_END;
    const size = w.pos - s - FRAME_OVERHEAD;
    bb[s + 3] = size >>> 24;
    bb[s + 4] = (size >>> 16) & 0xff;
    bb[s + 5] = (size >>> 8) & 0xff;
    bb[s + 6] = size & 0xff;

    const len = body.length;
    if (hasProperties(properties)) encodeHeaderFrame(w, channel, 60, len, properties, frameMax);
    else {
      // Header frame with no properties: a fixed 22 bytes.
      w.ensure(22);
      const h = w.buf;
      const p = w.pos;
      h[p] = FrameType.Header;
      h[p + 1] = channel >>> 8;
      h[p + 2] = channel & 0xff;
      h[p + 3] = 0;
      h[p + 4] = 0;
      h[p + 5] = 0;
      h[p + 6] = 14;
      h[p + 7] = 0;
      h[p + 8] = 60;
      h[p + 9] = 0;
      h[p + 10] = 0;
      const hi = Math.floor(len / 0x100000000);
      h[p + 11] = hi >>> 24;
      h[p + 12] = (hi >>> 16) & 0xff;
      h[p + 13] = (hi >>> 8) & 0xff;
      h[p + 14] = hi & 0xff;
      h[p + 15] = len >>> 24;
      h[p + 16] = (len >>> 16) & 0xff;
      h[p + 17] = (len >>> 8) & 0xff;
      h[p + 18] = len & 0xff;
      h[p + 19] = 0;
      h[p + 20] = 0;
      h[p + 21] = FRAME_END;
      w.pos = p + 22;
    }
  } catch (e) {
    w.rewind(mark);
    throw e;
  }
  encodeBodyFrames(w, channel, body, frameMax);
}
