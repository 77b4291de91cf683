/** The machine a run was made on, for the report. */
import os from "node:os";
import { execFileSync } from "node:child_process";

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  rabbitmq: string;
  os: string;
  date: string;
  command: string;
}

/** `rabbitmq`: the version the broker itself announced, when known (else rabbitmqctl's). */
export function machine(command: string, rabbitmqVersion?: string): Machine {
  let rabbitmq = rabbitmqVersion ?? "unknown";
  if (rabbitmqVersion === undefined)
    try {
      rabbitmq = execFileSync("rabbitmqctl", ["version"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
        timeout: 20000,
      }).trim();
    } catch {
      // leave unknown
    }
  return {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    rabbitmq,
    os: `${os.type()} ${os.release()}`,
    date: new Date().toISOString(),
    command,
  };
}
