import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { connect } from "../../src/index.js";
import { instrumentWarren } from "../../src/otel/index.js";

// The exporter is a metric reader; the app's own HTTP server serves it as /metrics.
const exporter = new PrometheusExporter({ preventServerStart: true });
const instrumentation = instrumentWarren({ meterProvider: new MeterProvider({ readers: [exporter] }), traces: false });
const server = createServer((request, response) => exporter.getMetricsRequestHandler(request, response)).listen(0);
await once(server, "listening");

const conn = await connect(process.env.AMQP_URL ?? "amqp://localhost");
const ch = await conn.openChannel();
const { queue } = await ch.queueDeclare("", { exclusive: true });
await ch.confirmSelect();
for (let i = 1; i <= 3; i++) await ch.publish("", queue, `job ${i}`);

const { port } = server.address() as AddressInfo;
const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
for (const line of metrics.split("\n")) {
  if (/^messaging_client_(sent_messages_total|operation_duration[a-z_]*count)/.test(line)) console.log(line.replace(/,?(server_address|server_port|otel_scope_name|otel_scope_version)="[^"]*"/g, ""));
}

instrumentation.disable();
server.close();
await conn.close();
