/**
 * amqplib 2.x's `connect(url, { recovery })`: a model that opens a fresh connection whenever the
 * one it has closes, after a delay that grows with each failed attempt, and runs the user's
 * `setup(model)` on each before handing it out. Channels belong to the connection they were
 * made on (they close with it); `setup` or the "connect" event makes them again. amqplib's
 * semantics, events and defaults, written over warren/amqplib's own connect.
 */
import { EventEmitter } from "node:events";
import type { Channel, ConfirmChannel, ConnectionInfo } from "./channel.js";
import { safeEmit } from "./emit.js";
import { warnOrEmitError } from "./errors.js";
import type { ChannelOptions } from "./types.js";

/** A connection as recovery hands it out and setup gets it (model.ts's ChannelModel, which imports this file). */
export interface ChannelModel extends EventEmitter {
  readonly connection: ConnectionInfo;
  close(): Promise<void>;
  createChannel(options?: ChannelOptions): Promise<Channel>;
  createConfirmChannel(options?: ChannelOptions): Promise<ConfirmChannel>;
  updateSecret(newSecret: Buffer, reason: string): Promise<void>;
}

/** amqplib's RecoveryOptions (its defaults in brackets). */
export interface RecoveryOptions {
  /** First delay, ms [100]. */
  initialDelay?: number;
  /** Longest delay, ms, jitter included [30000]. */
  maxDelay?: number;
  /** Growth of the delay per attempt [2]. */
  factor?: number;
  /** The delay's spread either way, as a share of it, 0 to 1 [0.2]. */
  jitter?: number;
  /** Attempts after a loss before giving up [Infinity]. */
  maxRetries?: number;
  /** Attempts before the first connection [maxRetries]. */
  initialMaxRetries?: number;
  /** Run on each new connection before it is handed out: a promise, or a callback `(model, done)`. */
  setup?: ((model: ChannelModel) => Promise<void>) | ((model: ChannelModel, done: (err?: Error) => void) => void);
  /** false: connect() resolves at once; waitForConnect() waits for the first connection [true]. */
  waitForConnect?: boolean;
  /** The delay before attempt n (from 1), instead of the built-in one; a bad value or a throw gives up. */
  calculateDelay?: (attempt: number) => number;
}

interface Settings {
  initialDelay: number;
  maxDelay: number;
  factor: number;
  jitter: number;
  maxRetries: number;
  initialMaxRetries: number;
  setup: RecoveryOptions["setup"] | undefined;
  calculateDelay: ((attempt: number) => number) | undefined;
}

const number = (v: unknown, fallback: number) =>
  Number.isFinite(Number(v)) && v !== null && v !== undefined ? Number(v) : fallback;
const retries = (v: unknown, fallback: number) =>
  v === undefined || v === null ? fallback : v === Infinity ? Infinity : Math.max(0, number(v, fallback));

function settings(o: RecoveryOptions | true): Settings {
  const s = o === true ? {} : o;
  const initialDelay = Math.max(0, number(s.initialDelay, 100));
  const maxRetries = retries(s.maxRetries, Infinity);
  return {
    initialDelay,
    maxDelay: Math.max(initialDelay, number(s.maxDelay, 30_000)),
    factor: Math.max(1, number(s.factor, 2)),
    jitter: Math.min(1, Math.max(0, number(s.jitter, 0.2))),
    maxRetries,
    initialMaxRetries: retries(s.initialMaxRetries, maxRetries),
    setup: typeof s.setup === "function" ? s.setup : undefined,
    calculateDelay: typeof s.calculateDelay === "function" ? s.calculateDelay : undefined,
  };
}

/** The delay before attempt n: exponential, its base capped so that the jitter either way stays under maxDelay. */
function delayOf(s: Settings, attempt: number): number {
  if (s.calculateDelay !== undefined) {
    const d = s.calculateDelay(attempt);
    if (typeof d === "number" && Number.isFinite(d) && d >= 0) return Math.round(d);
    throw new Error(`calculateDelay must return a finite, non-negative number of milliseconds (got ${String(d)})`);
  }
  const base = Math.min(s.maxDelay / (1 + s.jitter), s.initialDelay * s.factor ** (attempt - 1));
  const spread = base * s.jitter;
  return Math.max(0, Math.round(base + (spread > 0 ? Math.random() * spread * 2 - spread : 0)));
}

const asError = (e: unknown, fallback: string) => (e instanceof Error ? e : new Error(e ? String(e) : fallback));

function runSetup(setup: Settings["setup"], model: ChannelModel): Promise<void> {
  if (setup === undefined) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => (err ? reject(asError(err, "Recovery setup failed")) : resolve());
    try {
      if (setup.length >= 2) (setup as (m: ChannelModel, d: (err?: Error) => void) => void)(model, done);
      else Promise.resolve((setup as (m: ChannelModel) => unknown)(model)).then(() => done(), done);
    } catch (e) {
      done(e);
    }
  });
}

/** The connection of `connect(url, { recovery })`: createChannel() and the rest go to the connection of the moment. */
export class RecoveringChannelModel extends EventEmitter {
  readonly #open: () => Promise<ChannelModel>;
  readonly #settings: Settings;
  #model: ChannelModel | undefined;
  #unbind: (() => void) | undefined;
  #waiting: { resolve: (m: ChannelModel) => void; reject: (e: Error) => void }[] = [];
  #connecting = false;
  #stopped = false;
  #failure: Error | undefined;
  #connectedOnce = false;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  readonly #first: Promise<this>;
  #settleFirst: ((err?: Error) => void) | undefined;

  /** @internal connect() makes these. */
  constructor(open: () => Promise<ChannelModel>, options: RecoveryOptions | true) {
    super();
    this.#open = open;
    this.#settings = settings(options);
    this.#first = new Promise<this>((resolve, reject) => {
      this.#settleFirst = (err) => {
        this.#settleFirst = undefined;
        if (err) reject(err);
        else resolve(this);
      };
    });
    this.#first.catch(() => undefined);
    setImmediate(() => void this.#connect());
  }

  /** @internal Whether connect's `recovery` option asks for recovery (amqplib: `true`, or an object without `enabled: false`). */
  static asked<R extends { enabled?: boolean }>(recovery: R | boolean | undefined): recovery is R | true {
    return recovery === true || (typeof recovery === "object" && recovery !== null && recovery.enabled !== false);
  }

  /** Resolves once the first connection is made (rejects if recovery gives up first). */
  waitForConnect(): Promise<this> {
    return this.#first;
  }

  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    const closed = new Error("Connection closed");
    this.#settleFirst?.(closed);
    for (const w of this.#waiting.splice(0)) w.reject(closed);
    const model = this.#model;
    this.#model = undefined;
    this.#unbind?.();
    await model?.close().catch(() => undefined);
  }

  async createChannel(options?: ChannelOptions): Promise<Channel> {
    return (await this.#connection()).createChannel(options);
  }

  async createConfirmChannel(options?: ChannelOptions): Promise<ConfirmChannel> {
    return (await this.#connection()).createConfirmChannel(options);
  }

  async updateSecret(newSecret: Buffer, reason: string): Promise<void> {
    return (await this.#connection()).updateSecret(newSecret, reason);
  }

  /** The connection of the moment, or the next one. */
  #connection(): Promise<ChannelModel> {
    if (this.#model !== undefined) return Promise.resolve(this.#model);
    if (this.#stopped) return Promise.reject(this.#failure ?? new Error("Connection closed"));
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  async #connect(): Promise<void> {
    if (this.#stopped || this.#connecting) return;
    this.#connecting = true;
    let model: ChannelModel | undefined;
    try {
      model = await this.#open();
      if (!this.#stopped) await runSetup(this.#settings.setup, model);
      if (this.#stopped) return void (await model.close().catch(() => undefined));
      this.#model = model;
      this.#attempt = 0;
      this.#connectedOnce = true;
      this.#bind(model);
      this.#settleFirst?.();
      for (const w of this.#waiting.splice(0)) w.resolve(model);
      safeEmit(this, "connect", model);
    } catch (e) {
      const err = asError(e, "Connection recovery failed");
      await model?.close().catch(() => undefined);
      safeEmit(this, "connect-failed", err);
      this.#schedule(err);
    } finally {
      this.#connecting = false;
    }
  }

  #bind(model: ChannelModel): void {
    const listeners: [string, (...args: any[]) => void][] = [
      [
        "close",
        (err?: Error) => {
          if (this.#model !== model) return;
          this.#model = undefined;
          this.#unbind?.();
          if (this.#stopped) return;
          const e = asError(err, "Connection closed");
          safeEmit(this, "disconnect", e);
          this.#schedule(e);
        },
      ],
      ["blocked", (reason: string) => safeEmit(this, "blocked", reason)],
      ["unblocked", () => safeEmit(this, "unblocked")],
      ["error", (err: Error) => warnOrEmitError(this, err, "the connection failed")],
      ["update-secret-ok", () => safeEmit(this, "update-secret-ok")],
    ];
    for (const [event, listener] of listeners) model.on(event, listener);
    this.#unbind = () => {
      for (const [event, listener] of listeners) model.off(event, listener);
      model.on("error", () => undefined); // what a connection let go of says now goes nowhere
      this.#unbind = undefined;
    };
  }

  #schedule(err: Error): void {
    if (this.#stopped || this.#timer !== undefined) return;
    const s = this.#settings;
    if (this.#attempt >= (this.#connectedOnce ? s.maxRetries : s.initialMaxRetries)) return this.#giveUp(err);
    const attempt = this.#attempt + 1;
    let delay: number;
    try {
      delay = delayOf(s, attempt);
    } catch (e) {
      return this.#giveUp(asError(e, "calculateDelay failed"));
    }
    this.#attempt = attempt;
    safeEmit(this, "reconnect-scheduled", { attempt, delay, error: err });
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, delay);
  }

  #giveUp(err: Error): void {
    this.#stopped = true;
    this.#failure = err;
    this.#settleFirst?.(err);
    for (const w of this.#waiting.splice(0)) w.reject(err);
    safeEmit(this, "reconnect-failed", err);
  }
}
