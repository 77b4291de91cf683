/**
 * Credentials that change: most often an OAuth 2 access token, which RabbitMQ's
 * rabbitmq_auth_backend_oauth2 takes as the password (the user name is read from the token), and
 * which expires. A provider is asked on every connect and every reconnect, so recovery logs in
 * with a fresh token, never the one that has expired; and when it says when its token expires,
 * the connection asks it again before then and hands the new token to the broker
 * (connection.update-secret, RabbitMQ's extension), without reconnecting.
 */
import { AmqpError } from "./errors.js";
import { MAX_TIMER_MS } from "./wait.js";

/** What a credentials provider gives for one connect (or refresh). */
export interface Credentials {
  /** Default: the connect options' (or the URL's) user name. */
  username?: string;
  password: string;
  /** When the password stops being valid (a Date, or ms since the epoch): it is refreshed before then. */
  expiresAt?: Date | number;
}

/** Asked on every connect and reconnect, and before `expiresAt`. */
export type CredentialsProvider = () => Credentials | Promise<Credentials>;

/** What a provider gave, checked. */
export interface Fetched {
  username: string | undefined;
  password: string;
  expiresAt: number | undefined;
}

/** A token is refreshed once this share of its remaining lifetime has passed. */
const REFRESH_AT = 0.8;

/** Ask the provider; a provider that fails or gives something unusable is a clear error. */
export async function fetchCredentials(provider: CredentialsProvider): Promise<Fetched> {
  let c: Credentials;
  try {
    c = await provider();
  } catch (e) {
    throw new AmqpError(`the credentials provider failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (typeof c !== "object" || c === null || typeof c.password !== "string")
    throw new TypeError(
      `the credentials provider must give { password: string, username?, expiresAt? }, got ${c === null ? "null" : typeof c}`,
    );
  if (c.username !== undefined && typeof c.username !== "string")
    throw new TypeError(`the credentials provider's username must be a string, got ${typeof c.username}`);
  const expiresAt = c.expiresAt instanceof Date ? c.expiresAt.getTime() : c.expiresAt;
  if (expiresAt !== undefined && !Number.isFinite(expiresAt))
    throw new TypeError(
      `the credentials provider's expiresAt must be a Date or ms since the epoch, got ${String(c.expiresAt)}`,
    );
  return { username: c.username, password: c.password, expiresAt };
}

/** The connection a refresh updates (connect.ts adapts a Connection). */
export interface SecretHolder {
  /** Closed for good: nothing more to refresh. */
  readonly closed: boolean;
  /** Open (not recovering, not closing): update-secret can be sent. */
  readonly open: boolean;
  updateSecret(secret: string, reason: string): Promise<void>;
  /** The "secretUpdated" event. */
  updated(expiresAt: Date | undefined): void;
  /** The "secretUpdateFailed" event, or a process warning without a listener. */
  failed(err: AmqpError): void;
}

/**
 * Keeps one connection's secret fresh: after each fetch that says when it expires, a timer
 * (unref'd) at REFRESH_AT of the time left asks the provider again and sends update-secret.
 * A failed refresh is reported and tried again at REFRESH_AT of the time still left; once the
 * token has expired the broker closes the connection, and recovery (if on) logs in afresh.
 */
export class SecretRefresh {
  private holder: SecretHolder | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly provider: CredentialsProvider) {}

  /** The connection to keep fresh, once it is open. */
  attach(holder: SecretHolder): void {
    this.holder = holder;
  }

  /** Credentials were just fetched (a connect, a reconnect, a refresh): schedule the next refresh. */
  fetched(expiresAt: number | undefined): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (expiresAt === undefined) return;
    const left = expiresAt - Date.now();
    if (left <= 0) return;
    this.timer = setTimeout(() => void this.refresh(expiresAt), Math.min(MAX_TIMER_MS, Math.floor(left * REFRESH_AT)));
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.holder = undefined;
  }

  private async refresh(previous: number): Promise<void> {
    const h = this.holder;
    if (h === undefined || h.closed) return this.stop();
    // Recovering: the reconnect fetches fresh credentials and schedules from those.
    if (!h.open) return;
    try {
      const c = await fetchCredentials(this.provider);
      await h.updateSecret(c.password, "the OAuth 2 token was refreshed before it expired");
      this.fetched(c.expiresAt);
      h.updated(c.expiresAt === undefined ? undefined : new Date(c.expiresAt));
    } catch (e) {
      h.failed(e instanceof AmqpError ? e : new AmqpError(e instanceof Error ? e.message : String(e), { cause: e }));
      if (!h.closed) this.fetched(previous);
    }
  }
}
