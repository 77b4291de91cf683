/**
 * warren/amqplib/callback_api: amqplib 2.x's callback API, each operation a call of the promise
 * API (index.ts) whose outcome goes to the callback, `(err, ok)`. As in amqplib,
 * createChannel() returns the channel at once and calls back once it is open; operations made
 * before that wait for it.
 */
import { EventEmitter } from "node:events";
// Through the promise API's entry, which the build keeps a module of its own (one copy of it).
import {
  connect as connectPromise,
  RecoveringChannelModel,
  type Channel as PromiseChannel,
  type ChannelModel,
  type ConfirmChannel as PromiseConfirmChannel,
  type Connection as ConnectionInfo,
  type ChannelOptions,
  type ConsumeMessage,
  type GetMessage,
  type Message,
  type Options,
  type Replies,
  type RecoveryOptions,
  type SocketOptions,
} from "./index.js";

import { safeEmit } from "./emit.js";
import type { ChannelModel as RecoveredModel } from "./recovering.js";

export { credentials, IllegalOperationError } from "./index.js";
export type * from "./types.js";

type Callback<T> = (err: any, ok: T) => void;

/** The outcome of `p` to `callback`; without one, a failure is left to the "error" events, as in amqplib. */
function callBack<T>(p: Promise<T>, callback: Callback<T> | undefined): void {
  p.then(
    (ok) => callback?.(null, ok),
    (err: unknown) => callback?.(err, undefined as T),
  );
}

/**
 * Forward `events` from `from` to `to`; an "error" without a listener on `to` becomes a process
 * warning. `later`: these are emitted after the callbacks of the operations their cause ended,
 * as amqplib calls those first (a channel's "error" and "close" after the refused operation's,
 * a connection's "close" after close()'s).
 */
function forward(from: EventEmitter, to: EventEmitter, events: readonly string[], later: readonly string[] = []): void {
  for (const event of events)
    from.on(event, (...args: unknown[]) => {
      const emit = () => {
        if (event === "error" && to.listenerCount("error") === 0)
          process.emitWarning(`warren/amqplib: an "error" with no listener: ${(args[0] as Error).message}`);
        else safeEmit(to, event, ...args);
      };
      if (later.includes(event)) setImmediate(emit);
      else emit();
    });
}

/** createChannel()'s first argument, when it is the options and not the callback. */
function options(a: ChannelOptions | Callback<never> | undefined): ChannelOptions | undefined {
  return typeof a === "function" ? undefined : a;
}

/** createChannel()'s way: the channel now, `callback` once it is open (amqplib's). */
function opened<C extends Channel>(ch: C, callback: Callback<C> | undefined): C {
  callBack(
    ch.opened.then(() => ch),
    callback,
  );
  return ch;
}

/** Connect; `callback(err, connection)`. */
export function connect(callback: Callback<CallbackModel>): void;
export function connect(url: string | Options.Connect, callback: Callback<CallbackModel>): void;
export function connect(
  url: string | Options.Connect,
  socketOptions: SocketOptions,
  callback: Callback<CallbackModel>,
): void;
export function connect(
  url: string | Options.Connect,
  socketOptions: SocketOptions & { recovery: CallbackRecoveryOptions | true },
  callback?: Callback<RecoveringConnection>,
): RecoveringConnection;
export function connect(
  a: string | Options.Connect | Callback<CallbackModel>,
  b?: SocketOptions | Callback<CallbackModel>,
  c?: Callback<CallbackModel> | Callback<RecoveringConnection>,
): void | RecoveringConnection {
  const url = typeof a === "function" ? "amqp://localhost" : a;
  const [socketOptions, callback] =
    typeof a === "function" ? [{}, a] : typeof b === "function" ? [{}, b] : [b ?? {}, c];
  const { recovery, ...rest } = socketOptions as SocketOptions & {
    recovery?: (CallbackRecoveryOptions & { enabled?: boolean }) | boolean;
  };
  if (RecoveringChannelModel.asked(recovery)) {
    const recovering = new RecoveringConnection(url, rest, recovery);
    const cb = callback as Callback<RecoveringConnection> | undefined;
    if (recovery === true || recovery.waitForConnect !== false) recovering.waitForConnect((err, ok) => cb?.(err, ok));
    else if (cb !== undefined) process.nextTick(cb, null, recovering);
    return recovering;
  }
  callBack(
    connectPromise(url, rest).then((model) => modelOf(model)),
    callback as Callback<CallbackModel> | undefined,
  );
}

/** One callback connection per promise-API connection: what setup gets and what "connect" hands out are the same object. */
const models = new WeakMap<ChannelModel, CallbackModel>();
function modelOf(model: ChannelModel): CallbackModel {
  let m = models.get(model);
  if (m === undefined) models.set(model, (m = new CallbackModel(model)));
  return m;
}

/** amqplib's callback RecoveryOptions: `setup` gets a callback connection. */
export interface CallbackRecoveryOptions extends Omit<RecoveryOptions, "setup"> {
  setup?: ((model: CallbackModel) => Promise<void>) | ((model: CallbackModel, done: (err?: Error) => void) => void);
}

/** What a callback connection wraps: a promise-API connection, recovering or not. */
type PromiseConnection = Pick<RecoveredModel, "close" | "createChannel" | "createConfirmChannel" | "updateSecret">;

/** The calls both callback connections make the same way, over their promise-API connection. */
abstract class CallbackConnection<M extends PromiseConnection> extends EventEmitter {
  /** @internal */ protected readonly model: M;

  constructor(model: M) {
    super();
    this.model = model;
  }

  close(callback?: (err: Error) => void): void {
    callBack(this.model.close(), callback);
  }

  createChannel(a?: ChannelOptions | Callback<Channel>, b?: Callback<Channel>): Channel {
    return opened(new Channel(this.model.createChannel(options(a))), typeof a === "function" ? a : b);
  }

  createConfirmChannel(a?: ChannelOptions | Callback<ConfirmChannel>, b?: Callback<ConfirmChannel>): ConfirmChannel {
    return opened(new ConfirmChannel(this.model.createConfirmChannel(options(a))), typeof a === "function" ? a : b);
  }

  updateSecret(newSecret: Buffer, reason: string, callback?: (err: Error) => void): void {
    callBack(this.model.updateSecret(newSecret, reason), callback);
  }
}

/** The callback API's recovering connection (the promise API's RecoveringChannelModel underneath). */
export class RecoveringConnection extends CallbackConnection<RecoveringChannelModel> {
  /** @internal connect() makes these. */
  constructor(url: string | Options.Connect, socketOptions: SocketOptions, recovery: CallbackRecoveryOptions | true) {
    super(new RecoveringChannelModel(() => connectPromise(url, socketOptions), promiseRecovery(recovery)));
    this.model.on("connect", (m: RecoveredModel) => safeEmit(this, "connect", modelOf(m as ChannelModel)));
    forward(this.model, this, [
      "disconnect",
      "connect-failed",
      "reconnect-scheduled",
      "reconnect-failed",
      "blocked",
      "unblocked",
      "error",
      "update-secret-ok",
    ]);
  }

  waitForConnect(callback: (err: Error, connection: RecoveringConnection) => void): void {
    callBack(
      this.model.waitForConnect().then(() => this),
      callback,
    );
  }
}

/** The promise API's recovery options for the callback API's: `setup` handed the callback connection. */
function promiseRecovery(recovery: CallbackRecoveryOptions | true): RecoveryOptions | true {
  if (recovery === true) return true;
  const { setup, ...options } = recovery;
  if (setup === undefined) return options;
  return {
    ...options,
    setup:
      setup.length >= 2
        ? (m: RecoveredModel, done: (err?: Error) => void) =>
            (setup as (m: CallbackModel, d: typeof done) => void)(modelOf(m as ChannelModel), done)
        : (m: RecoveredModel) =>
            Promise.resolve((setup as (m: CallbackModel) => unknown)(modelOf(m as ChannelModel))).then(() => undefined),
  };
}

export class CallbackModel extends CallbackConnection<ChannelModel> {
  /** @internal connect() makes these. */
  constructor(model: ChannelModel) {
    super(model);
    forward(model, this, ["error", "close", "blocked", "unblocked", "update-secret-ok"], ["error", "close"]);
  }

  get connection(): ConnectionInfo {
    return this.model.connection;
  }
}

export class Channel extends EventEmitter {
  /** @internal */ readonly opened: Promise<PromiseChannel>;
  /** Set once open: what publish and the settles, which take no callback, go through. */
  #ch: PromiseChannel | undefined;
  /**
   * As amqplib's: at run time the connection underneath (what the model's `connection` is too,
   * which code such as rascal's channel pool compares), set once open; typed as amqplib's
   * declarations type it, the callback connection, so that code typed against them compiles.
   */
  get connection(): CallbackModel {
    return this.#ch?.connection as unknown as CallbackModel;
  }

  /** @internal CallbackModel.createChannel() makes these. */
  constructor(opening: Promise<PromiseChannel>) {
    super();
    this.opened = opening.then((ch) => {
      this.#ch = ch;
      forward(ch, this, ["error", "close", "return", "drain", "cancel", "delivery"], ["error", "close"]);
      return ch;
    });
    this.opened.catch(() => undefined);
  }

  /** The open channel, for what cannot wait: before it is open, amqplib's error for a channel not open. */
  protected get ch(): PromiseChannel {
    if (this.#ch === undefined) throw new Error("Channel is not open yet (wait for createChannel's callback)");
    return this.#ch;
  }

  #call<T>(run: (ch: PromiseChannel) => Promise<T>, callback: Callback<T> | undefined): void {
    callBack(this.opened.then(run), callback);
  }

  close(callback?: (err: Error) => void): void {
    this.#call((ch) => ch.close(), callback);
  }
  assertQueue(queue?: string, options?: Options.AssertQueue, callback?: Callback<Replies.AssertQueue>): void {
    this.#call((ch) => ch.assertQueue(queue, options), callback);
  }
  checkQueue(queue: string, callback?: Callback<Replies.AssertQueue>): void {
    this.#call((ch) => ch.checkQueue(queue), callback);
  }
  deleteQueue(queue: string, options?: Options.DeleteQueue, callback?: Callback<Replies.DeleteQueue>): void {
    this.#call((ch) => ch.deleteQueue(queue, options), callback);
  }
  purgeQueue(queue: string, callback?: Callback<Replies.PurgeQueue>): void {
    this.#call((ch) => ch.purgeQueue(queue), callback);
  }
  bindQueue(queue: string, source: string, pattern: string, args?: any, callback?: Callback<Replies.Empty>): void {
    this.#call((ch) => ch.bindQueue(queue, source, pattern, args), callback);
  }
  unbindQueue(queue: string, source: string, pattern: string, args?: any, callback?: Callback<Replies.Empty>): void {
    this.#call((ch) => ch.unbindQueue(queue, source, pattern, args), callback);
  }
  assertExchange(
    exchange: string,
    type: string,
    options?: Options.AssertExchange,
    callback?: Callback<Replies.AssertExchange>,
  ): void {
    this.#call((ch) => ch.assertExchange(exchange, type, options), callback);
  }
  checkExchange(exchange: string, callback?: Callback<Replies.Empty>): void {
    this.#call((ch) => ch.checkExchange(exchange), callback);
  }
  deleteExchange(exchange: string, options?: Options.DeleteExchange, callback?: Callback<Replies.Empty>): void {
    this.#call((ch) => ch.deleteExchange(exchange, options), callback);
  }
  bindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: any,
    callback?: Callback<Replies.Empty>,
  ): void {
    this.#call((ch) => ch.bindExchange(destination, source, pattern, args), callback);
  }
  unbindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: any,
    callback?: Callback<Replies.Empty>,
  ): void {
    this.#call((ch) => ch.unbindExchange(destination, source, pattern, args), callback);
  }
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): boolean {
    return this.ch.publish(exchange, routingKey, content, options);
  }
  sendToQueue(queue: string, content: Buffer, options?: Options.Publish): boolean {
    return this.ch.sendToQueue(queue, content, options);
  }
  consume(
    queue: string,
    onMessage: (msg: ConsumeMessage | null) => void,
    options?: Options.Consume,
    callback?: Callback<Replies.Consume>,
  ): void {
    // amqplib calls back on consume-ok, before the deliveries that follow it: those that arrive
    // first wait here for the callback.
    let early: (ConsumeMessage | null)[] | undefined = [];
    const deliver = (msg: ConsumeMessage | null) => void (early === undefined ? onMessage(msg) : early.push(msg));
    callBack(
      this.opened.then((ch) => ch.consume(queue, deliver, options)),
      (err, ok) => {
        callback?.(err, ok);
        const waiting = early ?? [];
        early = undefined;
        for (const msg of waiting) onMessage(msg);
      },
    );
  }
  cancel(consumerTag: string, callback?: Callback<Replies.Cancel>): void {
    this.#call((ch) => ch.cancel(consumerTag), callback);
  }
  get(queue: string, options?: Options.Get, callback?: Callback<GetMessage | false>): void {
    this.#call((ch) => ch.get(queue, options), callback);
  }
  ack(message: Message, allUpTo?: boolean): void {
    this.ch.ack(message, allUpTo);
  }
  ackAll(): void {
    this.ch.ackAll();
  }
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void {
    this.ch.nack(message, allUpTo, requeue);
  }
  nackAll(requeue?: boolean): void {
    this.ch.nackAll(requeue);
  }
  reject(message: Message, requeue?: boolean): void {
    this.ch.reject(message, requeue);
  }
  prefetch(count: number, global?: boolean, callback?: Callback<Replies.Empty>): void {
    this.#call((ch) => ch.prefetch(count, global), callback);
  }
  recover(callback?: Callback<Replies.Empty>): void {
    this.#call((ch) => ch.recover(), callback);
  }
}

export class ConfirmChannel extends Channel {
  declare readonly opened: Promise<PromiseConfirmChannel>;

  override publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: Callback<Replies.Empty>,
  ): boolean {
    return (this.ch as PromiseConfirmChannel).publish(exchange, routingKey, content, options, callback);
  }
  override sendToQueue(
    queue: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: Callback<Replies.Empty>,
  ): boolean {
    return (this.ch as PromiseConfirmChannel).sendToQueue(queue, content, options, callback);
  }
  waitForConfirms(callback: (err?: Error) => void): void {
    this.opened
      .then((ch) => ch.waitForConfirms())
      .then(
        () => callback(),
        (err: Error) => callback(err),
      );
  }
}
