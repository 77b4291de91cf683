/**
 * The clients, by the name used on the command line and in the report. Loaded lazily, so a
 * child process holds only the library it measures (its memory baseline is its own).
 */
import type { ClientFactory } from "./types.js";

export const CLIENTS: Record<string, () => Promise<ClientFactory>> = {
  warren: async () => (await import("./warren.js")).createWarren,
  amqplib: async () => (await import("./amqplib.js")).createAmqplib,
  "warren-amqplib": async () => (await import("./amqplib.js")).createWarrenAmqplib,
  cloudamqp: async () => (await import("./cloudamqp.js")).createCloudamqp,
  "rabbitmq-client": async () => (await import("./rabbitmq-client.js")).createRabbitmqClient,
  raw: async () => (await import("./raw.js")).createRaw,
};
