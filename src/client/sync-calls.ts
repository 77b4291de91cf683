/**
 * A channel's sync calls: synchronous methods (a request the peer answers with its own reply
 * method, e.g. queue.declare -> queue.declare-ok), one at a time.
 *
 * Invariant kept here: at most one synchronous method is in flight on a channel; the spec's
 * method model has a peer wait for the reply before it sends the next synchronous request on
 * the same channel. Later calls wait in a FIFO, each knowing the replies it accepts; any other
 * reply is 505 UNEXPECTED_FRAME.
 */
import { FrameError } from "../protocol/errors.js";
import type { Method, MethodName, MethodOf } from "../protocol/methods.js";
import { AbortError, TimeoutError, type AmqpError } from "./errors.js";
import type { Message } from "./message.js";
import { Queue } from "./queue.js";
import type { Bounds } from "./wait.js";

/**
 * A synchronous request a client sends: each is answered by the method of the same name with
 * "-ok" (basic.get, answered by get-ok or get-empty, has a call of its own: get()).
 */
export type Request = Exclude<{ [N in MethodName]: `${N}-ok` extends MethodName ? N : never }[MethodName], "basic.get">;
/** A request method, by its name. */
export type RequestMethod = Extract<Method, { name: Request }>;
/** The reply to request M. */
export type ReplyTo<M extends RequestMethod> = MethodOf<`${M["name"]}-ok` & MethodName>;

/** What a sync call resolves with: the reply method, or for basic.get the message or null. */
type Reply = Method | Message | null;

export interface SyncCallOptions<R = Method> extends Bounds {
  /** Runs synchronously as the method is written, before any later frame of this channel. */
  onSend?: (() => void) | undefined;
  /** Runs synchronously when the reply arrives, before any later frame is handled. */
  onReply?: ((m: R) => void) | undefined;
}

interface SyncCall {
  method: Method;
  replies: readonly MethodName[];
  resolve: (r: Reply) => void;
  reject: (e: unknown) => void;
  onSend: (() => void) | undefined;
  onReply: ((m: Method) => void) | undefined;
  /** ms to wait for the reply once sent. */
  timeout: number;
}

export class SyncCalls {
  private readonly queue = new Queue<SyncCall>();
  private inFlight: SyncCall | undefined;
  private timer: NodeJS.Timeout | undefined;

  /**
   * `send` writes a method (throwing TypeError/RangeError on a bad argument, having written
   * nothing); `timedOut` hears of a call whose reply did not come in time: its reply may still
   * come and would answer the wrong call, so the channel can no longer be trusted.
   */
  constructor(
    private readonly channel: number,
    private readonly send: (m: Method) => void,
    private readonly timedOut: (err: TimeoutError, method: Method) => void,
  ) {}

  /** Whether a call is in flight or queued. */
  get busy(): boolean {
    return this.inFlight !== undefined || this.queue.length > 0;
  }

  /** The method in flight, if any. */
  get current(): Method | undefined {
    return this.inFlight?.method;
  }

  /**
   * Queue `method`; it resolves with its reply. `signal` takes a queued call out of the line
   * unsent; a call already sent stays in place (its reply must still be read in turn) and only
   * the caller stops waiting.
   */
  call<M extends RequestMethod>(method: M, timeout: number, options: SyncCallOptions<ReplyTo<M>>): Promise<ReplyTo<M>> {
    return this.queueCall(method, [`${method.name}-ok` as MethodName], timeout, options as SyncCallOptions) as Promise<
      ReplyTo<M>
    >;
  }

  /** basic.get: resolves with the message (get-ok, then its content) or null (get-empty). */
  get(method: MethodOf<"basic.get">, timeout: number, options: SyncCallOptions): Promise<Message | null> {
    return this.queueCall(method, ["basic.get-ok", "basic.get-empty"], timeout, options) as Promise<Message | null>;
  }

  private queueCall(
    method: Method,
    replies: readonly MethodName[],
    timeout: number,
    options: SyncCallOptions,
  ): Promise<Reply> {
    const { signal, onSend, onReply } = options;
    return new Promise<Reply>((resolve, reject) => {
      const call: SyncCall = { method, replies, resolve, reject, onSend, onReply, timeout };
      if (signal !== undefined) {
        const onAbort = () => {
          if (this.queue.remove(call)) {
            reject(new AbortError(`${method.name} aborted before it was sent`));
            return;
          }
          call.resolve = () => undefined;
          call.reject = () => undefined;
          reject(new AbortError(`${method.name} aborted after it was sent: the broker may still act on it`));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        call.resolve = (v) => (signal.removeEventListener("abort", onAbort), resolve(v));
        call.reject = (e) => (signal.removeEventListener("abort", onAbort), reject(e));
      }
      this.queue.push(call);
      if (this.inFlight === undefined) this.sendNext();
    });
  }

  private sendNext(): void {
    const next = this.queue.shift();
    if (next === undefined) return;
    try {
      this.send(next.method);
    } catch (e) {
      // A bad argument (a name over 255 bytes...): fail this call only; nothing was written.
      next.reject(e);
      this.sendNext();
      return;
    }
    next.onSend?.();
    this.inFlight = next;
    this.timer = setTimeout(() => this.onTimeout(next), next.timeout);
  }

  private onTimeout(call: SyncCall): void {
    if (this.inFlight !== call) return;
    const err = new TimeoutError(`${call.method.name} got no reply within ${call.timeout} ms`);
    this.inFlight = undefined;
    call.reject(err);
    this.timedOut(err, call.method);
  }

  /** Check that `m` answers the call in flight: anything else is 505 UNEXPECTED_FRAME. */
  expect(m: Method): void {
    const call = this.inFlight;
    if (call === undefined || !call.replies.includes(m.name)) {
      throw new FrameError(
        505,
        `unexpected ${m.name} on channel ${this.channel}${call ? ` (waiting for ${call.replies.join(" or ")})` : ""}`,
      );
    }
  }

  /** The reply to the call in flight came (`m` is the reply method, for its onReply): resolve it, send the next. */
  reply(value: Reply, m?: Method): void {
    const call = this.inFlight!;
    clearTimeout(this.timer);
    this.inFlight = undefined;
    if (m !== undefined) call.onReply?.(m);
    call.resolve(value);
    this.sendNext();
  }

  /** The call in flight and every call queued behind it reject with `reason`. */
  fail(reason: AmqpError): void {
    clearTimeout(this.timer);
    const calls = this.inFlight ? [this.inFlight, ...this.queue.drain()] : this.queue.drain();
    this.inFlight = undefined;
    for (const call of calls) call.reject(reason);
  }
}
