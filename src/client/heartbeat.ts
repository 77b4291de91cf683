/**
 * Heartbeats (spec 4.2.7 "Heartbeat Frames"): with an interval of H seconds negotiated in
 * connection.tune, a tick every H/2 seconds sends a heartbeat frame when nothing else was
 * written since the last tick, and the peer is declared dead after 2H seconds (four ticks)
 * without a byte from it.
 */
export interface HeartbeatHost {
  /** Whether anything was written since the last tick (then no heartbeat frame is needed). */
  takeWritten(): boolean;
  /** Write a heartbeat frame now. */
  beat(): void;
  /** Called on every tick before anything else. */
  tick(): void;
  /** Nothing came from the peer for two intervals. */
  silent(seconds: number): void;
}

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private receivedSinceTick = false;
  private silentTicks = 0;

  constructor(private readonly host: HeartbeatHost) {}

  /** Start ticking for an interval of `seconds` (0: no heartbeats). */
  start(seconds: number): void {
    this.stop();
    this.silentTicks = 0;
    if (seconds === 0) return;
    this.timer = setInterval(() => this.tick(seconds), (seconds * 1000) / 2);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Bytes came from the peer. */
  received(): void {
    this.receivedSinceTick = true;
  }

  private tick(seconds: number): void {
    this.host.tick();
    if (!this.host.takeWritten()) {
      this.host.beat();
      this.host.takeWritten(); // the heartbeat itself does not count as traffic
    }
    if (this.receivedSinceTick) this.silentTicks = 0;
    else if (++this.silentTicks >= 4) {
      this.stop();
      this.host.silent(seconds * 2);
      return;
    }
    this.receivedSinceTick = false;
  }
}
