/**
 * Every diagnostics channel warren publishes, declared here and only here (node:diagnostics_channel).
 * Each is free when nobody subscribes: callers test `hasSubscribers` before building a message.
 *
 *   warren:frame:in   every frame read, after it is parsed        { connection, channel, frame }
 *   warren:frame:out  every frame written, as it is encoded       { connection, channel, frame }
 *
 * The message's type, FrameMessage, is declared beside Connection (connection.ts).
 */
import diagnostics from "node:diagnostics_channel";
import { ClassId, FrameType } from "../protocol/constants.js";
import type { Frame } from "../protocol/frame.js";
import type { Method } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";

export const frameIn = diagnostics.channel("warren:frame:in");
export const frameOut = diagnostics.channel("warren:frame:out");

/** A published content-bearing method as the frames it was written as: method, header, bodies. */
export function traceContent(connection: object, channel: number, method: Method, properties: BasicProperties, body: Uint8Array, frameMax: number): void {
  const pub = (frame: Frame) => frameOut.publish({ connection, channel, frame });
  pub({ type: FrameType.Method, channel, method });
  pub({ type: FrameType.Header, channel, classId: ClassId.basic, bodySize: body.length, properties });
  const max = frameMax ? frameMax - 8 : body.length || 1;
  for (let off = 0; off < body.length; off += max) pub({ type: FrameType.Body, channel, payload: Buffer.from(body.buffer, body.byteOffset + off, Math.min(max, body.length - off)) });
}
