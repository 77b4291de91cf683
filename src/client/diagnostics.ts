/**
 * Every diagnostics channel warren publishes, declared here and only here (node:diagnostics_channel).
 * Each is free when nobody subscribes: callers test `hasSubscribers` before building a message.
 *
 *   warren:frame:in   every frame read, after it is parsed        { connection, channel, frame }
 *   warren:frame:out  every frame written, as it is encoded       { connection, channel, frame }
 *
 * The message's type, FrameMessage, is declared beside Connection (connection.ts).
 *
 * Tracing channels (diagnostics_channel.tracingChannel: start, end, asyncStart, asyncEnd, error),
 * for instrumentation such as warren/otel (src/otel/):
 *
 *   warren:publish    a publish, from before its frames are encoded (`start` may add headers)
 *                     to its promise settling (written, or confirmed)        PublishContext
 *   warren:process    a delivery handled: a callback consumer's handler, or an iterator's loop
 *                     body, from the message handed out to the next step     ProcessContext
 *   warren:call       a synchronous method, from sent to its reply            CallContext
 *
 * `end` comes when the work returns; when it returned a promise, `async` is true on the context
 * and asyncStart/asyncEnd follow once it settles. `error` carries `error` on the context. A
 * `start` subscriber may set `run` on the context: the work (a publish, a handler; not an
 * iterator's body, which is the caller's) then runs inside it.
 */
import diagnostics from "node:diagnostics_channel";
import { ClassId, FrameType } from "../protocol/constants.js";
import type { Frame } from "../protocol/frame.js";
import type { Method } from "../protocol/methods.js";
import type { BasicProperties } from "../protocol/properties.js";
import type { Message } from "./message.js";
import { isThenable } from "./wait.js";

export const frameIn = diagnostics.channel("warren:frame:in");
export const frameOut = diagnostics.channel("warren:frame:out");

/** A published content-bearing method as the frames it was written as: method, header, bodies. */
export function traceContent(
  connection: object,
  channel: number,
  method: Method,
  properties: BasicProperties,
  body: Uint8Array,
  frameMax: number,
): void {
  const pub = (frame: Frame) => frameOut.publish({ connection, channel, frame });
  pub({ type: FrameType.Method, channel, method });
  pub({ type: FrameType.Header, channel, classId: ClassId.basic, bodySize: body.length, properties });
  const max = frameMax ? frameMax - 8 : body.length || 1;
  for (let off = 0; off < body.length; off += max)
    pub({
      type: FrameType.Body,
      channel,
      payload: Buffer.from(body.buffer, body.byteOffset + off, Math.min(max, body.length - off)),
    });
}

/** Where the broker is: for the server.address and server.port of a span. */
export interface Server {
  address: string;
  port: number;
}

/** What every traced operation carries, filled in as it goes. */
interface Traced {
  /** The work returned a promise: asyncStart and asyncEnd follow `end`. */
  async?: boolean;
  result?: unknown;
  error?: unknown;
  /** Set by a `start` subscriber: runs the work in a context of its own (warren/otel: its span made active). */
  run?: <T>(fn: () => T) => T;
}

export interface PublishContext extends Traced {
  server: Server;
  channel: number;
  exchange: string;
  routingKey: string;
  /** The properties about to be encoded, a copy of the caller's: a `start` subscriber may add headers. */
  properties: BasicProperties;
  body: Uint8Array;
  mandatory: boolean;
  /** The channel is in confirm mode: the publish settles on the broker's ack. */
  confirm: boolean;
}

export interface ProcessContext extends Traced {
  server: Server;
  channel: number;
  queue: string;
  message: Message;
}

export interface CallContext extends Traced {
  server: Server;
  channel: number;
  /** The method's name, "queue.declare" and so on. */
  method: string;
}

export const publishTrace = tracing<PublishContext>("warren:publish");
export const processTrace = tracing<ProcessContext>("warren:process");
export const callTrace = tracing<CallContext>("warren:call");

type Tracing<C extends object> = diagnostics.TracingChannel<C>;

/**
 * A tracing channel with `hasSubscribers`. Node.js has it (20.13+); Bun 1.4 does not (undefined,
 * so nothing was ever traced there): there it is read from the five channels, as Node defines it.
 */
function tracing<C extends object>(name: string): Tracing<C> {
  const t = diagnostics.tracingChannel<C>(name);
  if (typeof t.hasSubscribers !== "boolean") {
    Object.defineProperty(t, "hasSubscribers", {
      get: () =>
        t.start.hasSubscribers ||
        t.end.hasSubscribers ||
        t.asyncStart.hasSubscribers ||
        t.asyncEnd.hasSubscribers ||
        t.error.hasSubscribers,
    });
  }
  return t;
}

/**
 * Run `work` as one traced operation, in the order Node's traceSync/tracePromise use: start,
 * then end (work returned), then, for a promise, asyncStart and asyncEnd once it settles; error
 * before the end it belongs to. Call only when `trace.hasSubscribers`.
 */
export function traced<C extends Traced, R>(trace: Tracing<C>, ctx: C, work: () => R): R {
  trace.start.publish(ctx);
  let r: R;
  try {
    r = ctx.run ? ctx.run(work) : work();
  } catch (e) {
    ctx.error = e;
    trace.error.publish(ctx);
    trace.end.publish(ctx);
    throw e;
  }
  if (!isThenable(r)) {
    ctx.result = r;
    trace.end.publish(ctx);
    return r;
  }
  ctx.async = true;
  trace.end.publish(ctx);
  return (r as PromiseLike<unknown>).then(
    (v) => {
      ctx.result = v;
      trace.asyncStart.publish(ctx);
      trace.asyncEnd.publish(ctx);
      return v;
    },
    (e: unknown) => {
      ctx.error = e;
      trace.error.publish(ctx);
      trace.asyncStart.publish(ctx);
      trace.asyncEnd.publish(ctx);
      throw e;
    },
  ) as R;
}
