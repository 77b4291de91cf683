/** The events a Connection emits: its own, and those of automatic recovery (recovery.ts). */
import type { AmqpError } from "./errors.js";

/** What the "reconnecting" event says about the attempt to come. */
export interface ReconnectingInfo {
  /** 1 for the first round after a loss. */
  attempt: number;
  /** Milliseconds until this attempt. */
  delay: number;
  /** Why the previous attempt failed (for the first attempt: why the connection was lost). */
  error: AmqpError | undefined;
}

/** What automatic recovery (recovery.ts) reports. */
export interface RecoveryEvents {
  /** The connection was lost; recovery begins. */
  disconnect: [err: AmqpError];
  /** A reconnect attempt is scheduled. */
  reconnecting: [info: ReconnectingInfo];
  /** A new connection is up (topology and channels are being restored). */
  reconnected: [info: { attempt: number; hostname: string; port: number }];
  /** A server-named queue was declared again and got a new name. */
  queueRenamed: [info: { from: string; to: string }];
  /** Recovery is complete: topology, channels, prefetch, confirm mode and consumers are back. */
  topologyRecovered: [];
  /** Something could not be restored (`what` names it); the rest of recovery went on. */
  recoveryError: [err: AmqpError, what: string];
  /** Recovery gave up (maxAttempts, or fresh credentials refused); "close" follows with the same error. */
  recoveryFailed: [err: AmqpError];
}

/**
 * Where a connection is, as a readiness check reads it (`conn.state`, and the `state` event):
 * "connecting" (the handshake), "open", "blocked" (open, but the broker has stopped reading
 * publishes: a resource alarm), "recovering" (lost; automatic recovery is reconnecting or
 * restoring the channels), "closing" (close() was called), "closed".
 */
export type ConnectionState = "connecting" | "open" | "blocked" | "recovering" | "closing" | "closed";

export interface ConnectionEvents extends RecoveryEvents {
  /** `state` changed, from `previous`. */
  state: [state: ConnectionState, previous: ConnectionState];
  /** The broker stopped reading from this connection (a resource alarm): publishes wait until "unblocked". */
  blocked: [reason: string];
  unblocked: [];
  /** The connection is closed; err is undefined for a close by this client. */
  close: [err: AmqpError | undefined];
  /** The credentials provider gave a new password before the old one expired, and the broker took it (update-secret). */
  secretUpdated: [expiresAt: Date | undefined];
  /**
   * Refreshing the password failed. The provider failed: tried again later, before expiry. The
   * broker refused the new one: RabbitMQ closes the connection for that (530 NOT_ALLOWED), and
   * "close" follows with the same error. Without a listener, a process warning.
   */
  secretUpdateFailed: [err: AmqpError];
}
