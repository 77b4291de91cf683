/**
 * What a channel needs of its connection, declared on the channel's side: connection.ts
 * implements it, and channel code reaches the connection through nothing else.
 */
import type { BasicProperties } from "../protocol/properties.js";
import type { FieldTable } from "../protocol/table.js";
import type { AckWriter } from "./delivery-tags.js";
import type { AmqpError } from "./errors.js";
import type { ResolvedOptions } from "./options.js";
import type { Topology } from "./topology.js";

/** The write path a channel uses (outbound.ts). */
export interface ChannelWriter extends AckWriter {
  publish(
    channel: number,
    exchange: string,
    routingKey: string,
    mandatory: boolean,
    properties: BasicProperties,
    body: Uint8Array,
  ): void;
  /** Backpressure: resolved while the socket can take more. */
  writable(): Promise<void>;
}

/** What a channel of a recovering connection reads of its recovery. */
export interface RecoverySettings {
  readonly topology: Topology;
  /** How long calls wait for the connection to come back (ms). */
  readonly waitTimeout: number;
  readonly republishUnconfirmed: boolean;
}

/** Everything a channel (of type Ch) needs of its connection. */
export interface ChannelHost<Ch> {
  readonly out: ChannelWriter;
  /** The connection's sync-call timeout (ms), its largest message body accepted, and where the broker is. */
  readonly options: Pick<ResolvedOptions, "timeout" | "maxMessageSize" | "hostname" | "port">;
  /** The connection's close has begun: the user's calls are refused from now on. */
  readonly closing: boolean;
  /** connection.close is out: nothing more may be written. */
  readonly closeSent: boolean;
  /** Why the connection closed (undefined while open). */
  readonly reason: AmqpError | undefined;
  readonly serverProperties: FieldTable;
  readonly recovery: RecoverySettings | undefined;
  /** The channel id is free again (only after close-ok, sent or received). */
  freeId(id: number): void;
  /**
   * Another channel of the connection. `recorded: false`: its declarations are not recorded for
   * recovery (a look that may close it with a 404, recovery's own declarations).
   */
  openChannel(recorded: boolean): Promise<Ch>;
  /** Stop and resume reading the socket (a consumer iterator's buffer is full, then has room). */
  pauseReading(): void;
  resumeReading(): void;
}
