/**
 * What the client says in the handshake, as pure functions of the options and the broker's
 * methods (spec 2.2.4 "The Connection Class", 4.2.2 "Protocol Header"):
 *
 *   C: protocol header "AMQP" 0 0 9 1
 *   S: connection.start      C: connection.start-ok (client properties, SASL response)
 *  [S: connection.secure     C: connection.secure-ok]   (not used by PLAIN/AMQPLAIN/EXTERNAL)
 *   S: connection.tune       C: connection.tune-ok, connection.open (vhost)
 *   S: connection.open-ok
 *
 * Handshake keeps the order, with the next method expected explicit: one out of order is
 * 505 UNEXPECTED_FRAME.
 */
import { FRAME_MIN_SIZE, ReplyCode } from "../protocol/constants.js";
import { FrameError } from "../protocol/errors.js";
import type { Method, MethodOf } from "../protocol/methods.js";
import type { FieldTable } from "../protocol/table.js";
import { ConnectionClosedError, closeError, type AmqpError } from "./errors.js";
import type { ResolvedOptions } from "./options.js";
import { saslResponse } from "./sasl.js";
import { VERSION } from "../version.js";

/** The handshake's next step: start, then secure rounds or tune, then open-ok. */
export type HandshakeStep = "start" | "tune" | "open-ok";

/** What warren tells the broker about itself (the management UI shows it). */
function clientProperties(o: ResolvedOptions): FieldTable {
  return {
    product: "warren",
    version: VERSION,
    platform: `Node.js ${process.version}`,
    information: "https://www.npmjs.com/package/warren",
    capabilities: {
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      "basic.nack": true,
      consumer_cancel_notify: true,
      "connection.blocked": true,
      authentication_failure_close: true,
      per_consumer_qos: true,
    },
    ...(o.connectionName !== undefined ? { connection_name: o.connectionName } : {}),
    ...o.clientProperties,
  };
}

/** The answer to connection.start, or why there is none (the broker does not offer our mechanism). */
export function startOk(
  o: ResolvedOptions,
  start: MethodOf<"connection.start">,
): MethodOf<"connection.start-ok"> | string {
  if (!start.mechanisms.split(" ").includes(o.mechanism))
    return `the broker does not offer SASL mechanism ${o.mechanism} (it offers ${start.mechanisms})`;
  return {
    name: "connection.start-ok",
    clientProperties: clientProperties(o),
    mechanism: o.mechanism,
    response: secureOk(o).response,
    locale: o.locale,
  };
}

/** PLAIN, AMQPLAIN and EXTERNAL need no challenge round: a connection.secure is answered with the same credentials. */
export function secureOk(o: ResolvedOptions): MethodOf<"connection.secure-ok"> {
  return {
    name: "connection.secure-ok",
    response: saslResponse(o.mechanism, o.username, o.password) as unknown as string,
  };
}

export interface Tuned {
  frameMax: number;
  channelMax: number;
  heartbeat: number;
}

/**
 * Tune (RabbitMQ "Connections" guide): for frame_max and channel_max the lower non-zero value
 * wins, 0 meaning no limit; for the heartbeat, the lower if both are non-zero, else the other.
 * A string says why the broker's proposal is refused.
 */
export function negotiate(o: ResolvedOptions, tune: MethodOf<"connection.tune">): Tuned | string {
  if (tune.frameMax !== 0 && tune.frameMax < FRAME_MIN_SIZE)
    return `the broker proposed frame_max ${tune.frameMax}, below the minimum of ${FRAME_MIN_SIZE}`;
  const lower = (a: number, b: number) => (a === 0 ? b : b === 0 ? a : Math.min(a, b));
  return {
    frameMax: lower(o.frameMax, tune.frameMax),
    channelMax: lower(o.channelMax, tune.channelMax) || 0xffff,
    heartbeat:
      o.heartbeat === 0 || tune.heartbeat === 0
        ? Math.max(o.heartbeat, tune.heartbeat)
        : Math.min(o.heartbeat, tune.heartbeat),
  };
}

/** What the handshake does to its connection. */
export interface HandshakeHost {
  /** Write a method on channel 0. */
  send(m: Method): void;
  /** connection.tune was answered with these values: apply them (before tune-ok is written). */
  tuned(t: Tuned): void;
  /** connection.open-ok: the connection is open. */
  opened(): void;
  /** The handshake cannot go on. */
  refuse(err: AmqpError): void;
}

/** The client's side of the handshake, one method at a time. */
export class Handshake {
  /** The method expected next: a step out of this order is 505 UNEXPECTED_FRAME. */
  step: HandshakeStep = "start";

  constructor(
    private readonly options: ResolvedOptions,
    private readonly host: HandshakeHost,
  ) {}

  onMethod(
    m:
      | MethodOf<"connection.start">
      | MethodOf<"connection.secure">
      | MethodOf<"connection.tune">
      | MethodOf<"connection.open-ok">,
  ): void {
    switch (m.name) {
      case "connection.start":
        this.expect(m.name, "start", "tune");
        return this.onStart(m);
      case "connection.secure":
        this.expect(m.name, "tune", "tune");
        return this.host.send(secureOk(this.options));
      case "connection.tune": {
        this.expect(m.name, "tune", "open-ok");
        const tuned = negotiate(this.options, m);
        if (typeof tuned === "string")
          return this.host.refuse(
            new ConnectionClosedError({ replyCode: ReplyCode.NOT_ALLOWED, replyText: tuned, initiatedBy: "library" }),
          );
        this.host.tuned(tuned);
        this.host.send({ name: "connection.tune-ok", ...tuned });
        return this.host.send({ name: "connection.open", virtualHost: this.options.vhost });
      }
      case "connection.open-ok":
        this.expect(m.name, "open-ok", "open-ok");
        return this.host.opened();
    }
  }

  private expect(name: string, step: HandshakeStep, next: HandshakeStep): void {
    if (this.step !== step)
      throw new FrameError(
        505,
        `${name} out of order in the handshake (expected ${this.step === "tune" ? "connection.secure or connection.tune" : `connection.${this.step}`})`,
      );
    this.step = next;
  }

  private onStart(m: MethodOf<"connection.start">): void {
    const reply = startOk(this.options, m);
    if (typeof reply === "string")
      return this.host.refuse(
        closeError(
          "connection",
          { replyCode: ReplyCode.ACCESS_REFUSED, replyText: reply, initiatedBy: "library" },
          true,
        ),
      );
    try {
      // Before tune, frame_max is frame-min-size: RabbitMQ drops a larger start-ok
      // (frame_too_large) and the connect would only time out.
      this.host.send(reply);
    } catch (e) {
      const why = e instanceof RangeError ? e.message : String(e);
      const replyText = `connection.start-ok cannot be sent (${why}): before connection.tune a broker accepts frames of at most ${FRAME_MIN_SIZE} bytes, so clientProperties, the user name and the password must fit in that`;
      this.host.refuse(
        new ConnectionClosedError({ replyCode: ReplyCode.FRAME_ERROR, replyText, initiatedBy: "library", cause: e }),
      );
    }
  }
}
