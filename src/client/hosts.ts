/**
 * Which host of a `url` list to try first, at connect and at each reconnect round: in the order
 * given, or shuffled (a new order each time, so that a fleet of clients spreads over a cluster's
 * nodes instead of all crowding the first). Either way, a host that was just given up on goes
 * last: one whose connection recovery lost while restoring on it, or that closed it with 541
 * (RabbitMQ 4.3: a node cut off in a minority still accepts connections, then refuses declares
 * with 541 INTERNAL_ERROR "the metadata store operation timed out"), so the next round does not
 * return to it first.
 */

/** The `hostOrder` connect option. */
export type HostOrder = "in-order" | "shuffle";

/** The hosts to try, in order: `endpoints` as given or shuffled, with `last` (if among them) moved to the end. */
export function hostsToTry<T>(
  endpoints: readonly T[],
  order: HostOrder,
  last?: T,
  random: () => number = Math.random,
): T[] {
  const hosts = [...endpoints];
  if (order === "shuffle") {
    for (let i = hosts.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [hosts[i], hosts[j]] = [hosts[j]!, hosts[i]!];
    }
  }
  const at = last === undefined ? -1 : hosts.indexOf(last);
  if (at >= 0 && hosts.length > 1) hosts.push(...hosts.splice(at, 1));
  return hosts;
}

/** The option checked. */
export function hostOrder(o: unknown): HostOrder {
  if (o === undefined) return "in-order";
  if (o === "in-order" || o === "shuffle") return o;
  throw new TypeError(`connect: hostOrder must be "in-order" or "shuffle", got ${JSON.stringify(o)}`);
}
