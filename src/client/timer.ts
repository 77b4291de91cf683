/**
 * setTimeout's limit. Node fires a longer delay (Infinity included) after 1 ms instead, with
 * only a warning, so a "wait forever" timeout would fail at once; every timeout warren takes
 * from a user is checked against it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Whether `v` can be handed to setTimeout as a timeout: a number of ms in (0, MAX_TIMER_MS]. */
export function isTimeout(v: unknown): v is number {
  return typeof v === "number" && v > 0 && v <= MAX_TIMER_MS;
}
