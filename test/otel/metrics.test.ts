/**
 * warren/otel's metrics against the real broker, read through the SDK's in-memory exporter:
 * the messaging semantic conventions' sent / consumed counters and their duration histograms,
 * each data point's count checked exactly, failures under error.type, per destination.
 */
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
} from "@opentelemetry/sdk-metrics";
import { afterAll, beforeAll, expect, test } from "vitest";
import { NotFoundError, type Message } from "../../src/index.js";
import { instrumentWarren, type WarrenInstrumentation } from "../../src/otel/index.js";
import { eventually, outcome, useConnections } from "../client/util.js";

const open = useConnections();
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
const provider = new MeterProvider({ readers: [reader] });
let instrumentation: WarrenInstrumentation;

beforeAll(() => void (instrumentation = instrumentWarren({ meterProvider: provider, traces: false })));
afterAll(async () => {
  instrumentation.disable();
  await provider.shutdown();
});

/** The data points of one metric, as exported now. */
async function points(name: string): Promise<{ type: DataPointType; points: DataPoint<number | Histogram>[] }> {
  await reader.forceFlush();
  const metrics =
    exporter
      .getMetrics()
      .at(-1)
      ?.scopeMetrics.flatMap((s) => s.metrics) ?? [];
  const m = metrics.find((x) => x.descriptor.name === name);
  if (m === undefined) throw new Error(`no metric ${name}; have ${metrics.map((x) => x.descriptor.name).join(", ")}`);
  return { type: m.dataPointType, points: m.dataPoints as DataPoint<number | Histogram>[] };
}

/** The count of the data point whose attributes include `attrs` (a counter's value, a histogram's count). */
async function count(name: string, attrs: Record<string, unknown>): Promise<number> {
  const { points: all } = await points(name);
  const matching = all.filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));
  return matching.reduce((n, p) => n + (typeof p.value === "number" ? p.value : p.value.count), 0);
}

test("sent and consumed messages, publish and process durations: each counted exactly, failures under error.type", async () => {
  const conn = await open();
  const ch = await conn.openChannel();
  await ch.confirmSelect();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  for (let i = 0; i < 10; i++) await ch.publish("", queue, String(i));
  const bad = await conn.openChannel();
  await bad.confirmSelect();
  const missing = await outcome(bad.publish("warren-metrics-no-such-exchange", "k", "x"));
  expect(!missing.ok && missing.error instanceof NotFoundError).toBe(true);

  const seen: Message[] = [];
  const sub = await conn.openChannel();
  sub.on("consumerError", () => undefined); // the two failures, expected
  await sub.consume(
    queue,
    (msg) => {
      seen.push(msg);
      if (Number(msg.body.toString()) % 5 === 0) throw new Error("handler failed"); // ids 0 and 5
    },
    { settle: "auto", requeue: false },
  );
  await eventually(() => seen.length === 10, "10 handled");
  await sub.prefetch(0); // a round trip: the last handler's settle is out, its span of time ended

  const base = {
    "messaging.system": "rabbitmq",
    "messaging.operation.name": "publish",
    "messaging.operation.type": "send",
  };
  expect(
    await count("messaging.client.sent.messages", {
      ...base,
      "messaging.destination.name": "",
      "error.type": undefined,
    }),
  ).toBe(10);
  expect(
    await count("messaging.client.sent.messages", {
      ...base,
      "messaging.destination.name": "warren-metrics-no-such-exchange",
      "error.type": "NotFoundError",
    }),
  ).toBe(1);
  expect(await count("messaging.client.operation.duration", base)).toBe(11);

  const proc = { "messaging.operation.name": "process", "messaging.destination.subscription.name": queue };
  expect(await count("messaging.client.consumed.messages", { ...proc, "error.type": undefined })).toBe(8);
  expect(await count("messaging.client.consumed.messages", { ...proc, "error.type": "Error" })).toBe(2);
  expect(await count("messaging.process.duration", proc)).toBe(10);

  const { type, points: durations } = await points("messaging.process.duration");
  expect(type).toBe(DataPointType.HISTOGRAM);
  const h = durations[0]!.value as Histogram;
  expect(h.buckets.boundaries[0]).toBe(0.005);
  expect(h.sum).toBeGreaterThanOrEqual(0);
  expect(
    durations.every(
      (p) => p.attributes["server.port"] !== undefined && p.attributes["messaging.message.id"] === undefined,
    ),
  ).toBe(true);
});
