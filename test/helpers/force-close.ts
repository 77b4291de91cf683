/**
 * Close a client's connection from the broker's side, as an operator would:
 * `rabbitmqctl close_connection <pid> <reason>` (the client gets connection.close 320
 * CONNECTION_FORCED). The connection is found by the connection name the client gave
 * (`connect({ connectionName })`), which RabbitMQ lists in its client properties.
 */
import { eventually } from "../client/util.js";
import { rabbitmqctl } from "./broker.js";

/** The broker-side pids of the open connections named `name`. */
export async function connectionPids(name: string): Promise<string[]> {
  const out = await rabbitmqctl(["list_connections", "pid", "client_properties", "--quiet", "--no-table-headers"]);
  const marker = `{"connection_name",${JSON.stringify(name)}}`;
  return out
    .split("\n")
    .filter((line) => line.includes(marker))
    .map((line) => line.split("\t")[0]!);
}

/** Force-close every connection named `name` (waiting until the broker lists one). Resolves with how many were closed. */
export async function forceCloseConnection(name: string, reason = "closed by a test"): Promise<number> {
  const pids = await eventually(
    async () => {
      const p = await connectionPids(name);
      return p.length > 0 ? p : undefined;
    },
    `a connection named ${name} in rabbitmqctl list_connections`,
    100,
    50,
  );
  for (const pid of pids) await rabbitmqctl(["close_connection", pid, reason]);
  return pids.length;
}
