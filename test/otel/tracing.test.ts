/**
 * warren/otel against the real broker, with OpenTelemetry's SDK (an in-memory exporter), the
 * AsyncLocalStorage context manager and the W3C trace-context propagator: a publish and its
 * consumption are one trace across the broker; a message another client published with a
 * `traceparent` (Python pika) continues its trace in warren; with the instrumentation disabled,
 * nothing is recorded and the channels have no subscriber.
 */
import { execFile } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { SpanKind, SpanStatusCode, context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import type { Channel, Message } from "../../src/index.js";
import { instrumentWarren, type WarrenInstrumentation } from "../../src/otel/index.js";
import { getBrokerUrl } from "../helpers/broker.js";
import { eventually, useConnections } from "../client/util.js";
import { testNeeding } from "../helpers/capabilities.js";

const open = useConnections();
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer("test");
let instrumentation: WarrenInstrumentation;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  instrumentation = instrumentWarren({ tracerProvider: provider });
});
afterAll(() => {
  instrumentation.disable();
  context.disable();
  propagation.disable();
});
beforeEach(() => exporter.reset());

const spans = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);

async function setup(): Promise<{ ch: Channel; queue: string }> {
  const ch = await (await open()).openChannel();
  const { queue } = await ch.queueDeclare("", { exclusive: true });
  return { ch, queue };
}

describe("warren/otel", () => {
  test("a publish inside an active span and its processing are one trace; the handler runs in the process span", async () => {
    const { ch, queue } = await setup();
    const { queue: replies } = await ch.queueDeclare("", { exclusive: true });
    const seen: Message[] = [];
    let activeInHandler: string | undefined;
    await ch.consume(
      queue,
      async (msg) => {
        seen.push(msg);
        activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
        await ch.publish("", replies, "reply", { messageId: "r1" }); // a child of the process span
      },
      { noAck: true },
    );
    await tracer.startActiveSpan("request", async (parent) => {
      await ch.publish("", queue, "hello", { messageId: "m1", correlationId: "c1" });
      parent.end();
    });
    await eventually(
      () => spans("publish amq.default").length === 2 && spans("process amq.default").length === 1,
      "three spans",
    );

    const [parent] = spans("request");
    const [publish, reply] = spans("publish amq.default").sort((a, b) =>
      a.attributes["messaging.message.id"] === "m1" ? -1 : b.attributes["messaging.message.id"] === "m1" ? 1 : 0,
    );
    const [processed] = spans("process amq.default");
    const traceId = parent!.spanContext().traceId;
    for (const s of [publish!, processed!, reply!]) expect(s.spanContext().traceId).toBe(traceId);
    expect(publish!.parentSpanContext?.spanId).toBe(parent!.spanContext().spanId);
    expect(processed!.parentSpanContext?.spanId).toBe(publish!.spanContext().spanId);
    expect(reply!.parentSpanContext?.spanId).toBe(processed!.spanContext().spanId);
    expect(activeInHandler).toBe(processed!.spanContext().spanId);

    expect(publish!.kind).toBe(SpanKind.PRODUCER);
    expect(publish!.attributes).toMatchObject({
      "messaging.system": "rabbitmq",
      "messaging.operation.name": "publish",
      "messaging.operation.type": "send",
      "messaging.destination.name": "",
      "messaging.rabbitmq.destination.routing_key": queue,
      "messaging.message.id": "m1",
      "messaging.message.conversation_id": "c1",
      "messaging.message.body.size": 5,
      "server.address": "127.0.0.1",
    });
    expect(processed!.kind).toBe(SpanKind.CONSUMER);
    expect(processed!.attributes).toMatchObject({
      "messaging.system": "rabbitmq",
      "messaging.operation.type": "process",
      "messaging.destination.subscription.name": queue,
      "messaging.rabbitmq.message.delivery_tag": 1,
      "messaging.message.id": "m1",
      "messaging.message.body.size": 5,
    });
    // The context crossed the broker in the message's headers.
    expect(String(seen[0]!.properties.headers?.["traceparent"])).toBe(
      `00-${traceId}-${publish!.spanContext().spanId}-01`,
    );
  });

  test("an iterator's loop body is a process span, from the message handed out to the next step", async () => {
    const { ch, queue } = await setup();
    await ch.publish("", queue, "a", { messageId: "1" });
    await ch.publish("", queue, "b", { messageId: "2" });
    let n = 0;
    for await (const msg of ch.consume(queue, { noAck: true })) {
      expect(msg.properties.headers?.["traceparent"]).toBeDefined();
      if (++n === 2) break;
    }
    const processed = spans("process amq.default");
    expect(processed.map((s) => s.attributes["messaging.message.id"])).toEqual(["1", "2"]);
    const published = spans("publish amq.default");
    for (const [i, s] of processed.entries())
      expect(s.parentSpanContext?.spanId).toBe(published[i]!.spanContext().spanId);
  });

  test("a handler that throws ends its span with status ERROR and the exception", async () => {
    const { ch, queue } = await setup();
    ch.on("consumerError", () => undefined);
    await ch.consume(queue, () => Promise.reject(new Error("boom")), { noAck: true });
    await ch.publish("", queue, "x");
    await eventually(() => spans("process amq.default").length === 1, "the process span");
    const [s] = spans("process amq.default");
    expect(s!.status).toEqual({ code: SpanStatusCode.ERROR, message: "boom" });
    expect(s!.events.map((e) => e.name)).toContain("exception");
  });

  testNeeding(
    "pika",
    "a message Python pika published with a traceparent header continues its trace in warren",
    async () => {
      const { ch, queue } = await setup();
      const got: Message[] = [];
      await ch.consume(queue, (m) => void got.push(m), { noAck: true });
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const spanId = "00f067aa0ba902b7";
      const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
      const script = [
        "import sys, pika",
        "c = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))",
        "ch = c.channel()",
        "ch.basic_publish(exchange='', routing_key=sys.argv[2], body=b'from pika', properties=pika.BasicProperties(headers={'traceparent': sys.argv[3]}))",
        "c.close()",
      ].join("\n");
      await promisify(execFile)(python, ["-c", script, await getBrokerUrl(), queue, `00-${traceId}-${spanId}-01`]);
      await eventually(() => spans("process amq.default").length === 1, "the process span");
      const [s] = spans("process amq.default");
      expect(s!.spanContext().traceId).toBe(traceId);
      expect(s!.parentSpanContext?.spanId).toBe(spanId);
      expect(got[0]!.body.toString()).toBe("from pika");
    },
  );

  test("warren:call traces synchronous methods: queue.declare from start to its reply", async () => {
    const { ch } = await setup();
    const seen: string[] = [];
    const calls = diagnostics.tracingChannel<{ method: string; async?: boolean }>("warren:call");
    const handlers = {
      start: (c: { method: string }) => void seen.push(`start ${c.method}`),
      end: () => undefined,
      asyncStart: () => undefined,
      asyncEnd: (c: { method: string }) => void seen.push(`done ${c.method}`),
      error: () => undefined,
    };
    calls.subscribe(handlers);
    try {
      await ch.queueDeclare("", { exclusive: true });
    } finally {
      calls.unsubscribe(handlers);
    }
    expect(seen).toEqual(["start queue.declare", "done queue.declare"]);
  });

  test("disabled, it records nothing and leaves the channels without subscribers", async () => {
    const { ch, queue } = await setup();
    instrumentation.disable();
    try {
      // The five channels of each, read one by one (Bun's TracingChannel has no hasSubscribers).
      const subscribed = (name: string) =>
        ["start", "end", "asyncStart", "asyncEnd", "error"].some(
          (e) => diagnostics.channel(`tracing:${name}:${e}`).hasSubscribers,
        );
      expect(subscribed("warren:publish")).toBe(false);
      expect(subscribed("warren:process")).toBe(false);
      const got: Message[] = [];
      await ch.consume(queue, (m) => void got.push(m), { noAck: true });
      await ch.publish("", queue, "quiet");
      await eventually(() => got.length === 1, "the delivery");
      expect(got[0]!.properties.headers).toBeUndefined();
      expect(exporter.getFinishedSpans()).toEqual([]);
    } finally {
      instrumentation = instrumentWarren({ tracerProvider: provider });
    }
  });
});
