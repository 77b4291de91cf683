/**
 * A dedicated encoder for the frames sent once per message: basic.publish, its content header
 * and its body frames (spec 4.2.6), written straight into the slab by index. The bytes are those
 * of encodeMethodFrame + encodeContent (test/protocol/publish.test.ts checks it); what it saves
 * is the per-field calls, range checks and size patching of the general path.
 *
 *   method frame:  1 | channel | size | 60 40 | reserved short 0 | exchange | routing-key | bits | CE
 *   header frame:  2 | channel | size | 60 | weight 0 | body-size (64 bit) | flags [+ properties] | CE
 */
import { FRAME_END, FRAME_HEADER_SIZE, FRAME_OVERHEAD, FrameType } from "./constants.js";
import { encodeBodyFrames, encodeHeaderFrame } from "./frame.js";
import type { BasicProperties } from "./properties.js";
import { put16, put32, type Writer } from "./writer.js";

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
export function encodePublish(
  w: Writer,
  channel: number,
  exchange: string,
  routingKey: string,
  mandatory: boolean,
  properties: BasicProperties,
  body: Uint8Array,
  frameMax: number,
): void {
  const mark = w.mark();
  try {
    w.ensure(FRAME_HEADER_SIZE + 6); // each name reserves its own room
    const b = w.buf;
    const start = w.pos;
    b[start] = FrameType.Method;
    put16(b, start + 1, channel);
    // size at start + 3, patched below
    put16(b, start + 7, 60); // class basic
    put16(b, start + 9, 40); // method publish
    put16(b, start + 11, 0); // reserved-1 (ticket)
    w.pos = start + 13;
    w.shortstr(exchange, "basic.publish exchange");
    w.shortstr(routingKey, "basic.publish routingKey");
    w.ensure(2);
    const bb = w.buf; // a non-ASCII name may have grown the slab
    const s = w.at(mark);
    bb[w.pos++] = mandatory ? 1 : 0; // mandatory bit 0, immediate bit 1 (never set: RabbitMQ refuses it)
    bb[w.pos++] = FRAME_END;
    put32(bb, s + 3, w.pos - s - FRAME_OVERHEAD);

    const len = body.length;
    if (hasProperties(properties)) encodeHeaderFrame(w, channel, 60, len, properties, frameMax);
    else {
      // Header frame with no properties: a fixed 22 bytes.
      w.ensure(22);
      const h = w.buf;
      const p = w.pos;
      h[p] = FrameType.Header;
      put16(h, p + 1, channel);
      put32(h, p + 3, 14);
      put16(h, p + 7, 60); // class basic
      put16(h, p + 9, 0); // weight
      put32(h, p + 11, Math.floor(len / 0x100000000));
      put32(h, p + 15, len);
      put16(h, p + 19, 0); // property flags: none
      h[p + 21] = FRAME_END;
      w.pos = p + 22;
    }
  } catch (e) {
    w.rewind(mark);
    throw e;
  }
  encodeBodyFrames(w, channel, body, frameMax);
}
