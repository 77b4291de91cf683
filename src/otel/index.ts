/**
 * warren/otel: OpenTelemetry tracing and metrics for warren, over the tracing channels warren publishes
 * (src/client/diagnostics.ts), the way undici is instrumented: nothing is patched, and without
 * this module loaded and enabled the channels have no subscriber and cost a `hasSubscribers`
 * test each.
 *
 *   import { instrumentWarren } from "warren/otel";
 *   const instrumentation = instrumentWarren();        // the global tracer provider
 *   ...
 *   instrumentation.disable();
 *
 * Spans follow OpenTelemetry's messaging semantic conventions for RabbitMQ:
 * - "publish <exchange>" (PRODUCER), from the publish call to its promise settling (written, or
 *   confirmed), with the W3C trace context (`traceparent`, `tracestate`) injected into the
 *   message's headers through the registered propagator;
 * - "process <exchange>" (CONSUMER), one per delivery handled, its parent the context extracted
 *   from the message's headers, so a trace crosses the broker. A callback consumer's handler
 *   runs with the span active (what it publishes is the span's child); an iterator's loop body
 *   is the caller's code, so its span is timed, not made active.
 * Attributes: messaging.system "rabbitmq", messaging.operation.name and .type,
 * messaging.destination.name (the exchange, "" for the default one),
 * messaging.rabbitmq.destination.routing_key, messaging.rabbitmq.message.delivery_tag,
 * messaging.message.id, messaging.message.conversation_id, messaging.message.body.size,
 * messaging.destination.subscription.name (the queue consumed), server.address, server.port.
 *
 *
 * Metrics (the global meter provider, or `meterProvider`), the conventions' messaging metrics:
 * - messaging.client.sent.messages (counter): publishes, each once it settles, with error.type
 *   when it failed;
 * - messaging.client.operation.duration (histogram, s): a publish, from the call to its promise
 *   settling;
 * - messaging.client.consumed.messages (counter): deliveries handed to a handler or iterator;
 * - messaging.process.duration (histogram, s): a handler's run (an iterator's loop step).
 * Their attributes: messaging.system, messaging.operation.name and .type,
 * messaging.destination.name, messaging.destination.subscription.name (process), error.type,
 * server.address, server.port.
 *
 * @opentelemetry/api is an optional peer dependency: only this entry point needs it.
 *
 * @module warren/otel
 */
import diagnostics from "node:diagnostics_channel";
import {
  SpanKind,
  SpanStatusCode,
  context,
  metrics,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import type { ProcessContext, PublishContext } from "../client/diagnostics.js";
import type { FieldTable } from "../protocol/table.js";
import { VERSION } from "../version.js";

/** Options of instrumentWarren(). */
export interface WarrenInstrumentationOptions {
  /** Default: the global tracer provider (trace.getTracerProvider()). */
  tracerProvider?: TracerProvider;
  /** Default: the global meter provider (metrics.getMeterProvider()). */
  meterProvider?: MeterProvider;
  /** Make spans (default true). */
  traces?: boolean;
  /** Record the metrics (default true). */
  metrics?: boolean;
}

/** What instrumentWarren() returns: the instrumentation, to disable. */
export interface WarrenInstrumentation {
  /** Stop making spans: every channel subscription is removed. */
  disable(): void;
}

const NAME = "warren";

/** The span of an operation in flight, and when it started (ms), kept on its tracing context. */
const SPAN = Symbol("warren.otel.span");
const STARTED = Symbol("warren.otel.started");
type WithSpan = { [SPAN]?: Span; [STARTED]?: number };

/**
 * Histogram buckets (seconds) of the messaging semantic conventions' duration metrics: the
 * conventions advise these for messaging.client.operation.duration and messaging.process.duration.
 */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** The metrics of the messaging semantic conventions that warren records. */
interface Instruments {
  sent: Counter;
  consumed: Counter;
  operationDuration: Histogram;
  processDuration: Histogram;
}

const setter: TextMapSetter<FieldTable> = {
  set: (headers, key, value) => void (headers[key] = value),
};

const getter: TextMapGetter<FieldTable | undefined> = {
  keys: (headers) => Object.keys(headers ?? {}),
  get: (headers, key) => {
    const v = headers?.[key];
    return typeof v === "string" ? v : Buffer.isBuffer(v) ? v.toString("utf8") : undefined;
  },
};

/** Start making spans for every warren connection in this process. */
export function instrumentWarren(options: WarrenInstrumentationOptions = {}): WarrenInstrumentation {
  const tracer: Tracer | undefined =
    options.traces === false
      ? undefined
      : (options.tracerProvider ?? trace.getTracerProvider()).getTracer(NAME, VERSION);
  const instruments =
    options.metrics === false ? undefined : meters(options.meterProvider ?? metrics.getMeterProvider());
  const publish = diagnostics.tracingChannel<PublishContext>("warren:publish");
  const process = diagnostics.tracingChannel<ProcessContext>("warren:process");

  /** The operation ended: its metrics, then its span. */
  const finish = (ctx: (PublishContext | ProcessContext) & WithSpan) => {
    if (instruments !== undefined && ctx[STARTED] !== undefined) {
      record(instruments, ctx, (performance.now() - ctx[STARTED]) / 1000);
      delete ctx[STARTED];
    }
    const span = ctx[SPAN];
    if (span === undefined) return;
    if (ctx.error !== undefined) {
      span.recordException(ctx.error instanceof Error ? ctx.error : String(ctx.error));
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: ctx.error instanceof Error ? ctx.error.message : String(ctx.error),
      });
      span.setAttribute("error.type", ctx.error instanceof Error ? ctx.error.name : "Error");
    }
    span.end();
    delete ctx[SPAN];
  };

  const publishHandlers = {
    start(ctx: PublishContext & WithSpan) {
      if (instruments !== undefined) ctx[STARTED] = performance.now();
      if (tracer === undefined) return;
      const p = ctx.properties;
      const span = tracer.startSpan(`publish ${ctx.exchange || "amq.default"}`, {
        kind: SpanKind.PRODUCER,
        attributes: {
          ...common(ctx.server),
          "messaging.operation.name": "publish",
          "messaging.operation.type": "send",
          "messaging.destination.name": ctx.exchange,
          ...(ctx.routingKey !== "" ? { "messaging.rabbitmq.destination.routing_key": ctx.routingKey } : {}),
          ...message(p.messageId, p.correlationId, ctx.body.length),
        },
      });
      ctx[SPAN] = span;
      p.headers = { ...p.headers };
      propagation.inject(trace.setSpan(context.active(), span), p.headers, setter);
    },
    end(ctx: PublishContext & WithSpan) {
      if (!ctx.async) finish(ctx);
    },
    asyncStart() {},
    asyncEnd: finish,
    error() {},
  };

  const processHandlers = {
    start(ctx: ProcessContext & WithSpan) {
      if (instruments !== undefined) ctx[STARTED] = performance.now();
      if (tracer === undefined) return;
      const m = ctx.message;
      const parent: Context = propagation.extract(context.active(), m.properties.headers, getter);
      const span = tracer.startSpan(
        `process ${m.fields.exchange || "amq.default"}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            ...common(ctx.server),
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": m.fields.exchange,
            "messaging.destination.subscription.name": ctx.queue,
            ...(m.fields.routingKey !== ""
              ? { "messaging.rabbitmq.destination.routing_key": m.fields.routingKey }
              : {}),
            "messaging.rabbitmq.message.delivery_tag": m.fields.deliveryTag,
            ...message(m.properties.messageId, m.properties.correlationId, m.body.length),
          },
        },
        parent,
      );
      ctx[SPAN] = span;
      const active = trace.setSpan(parent, span);
      ctx.run = (fn) => context.with(active, fn);
    },
    end(ctx: ProcessContext & WithSpan) {
      if (!ctx.async) finish(ctx);
    },
    asyncStart() {},
    asyncEnd: finish,
    error() {},
  };

  publish.subscribe(publishHandlers as Parameters<typeof publish.subscribe>[0]);
  process.subscribe(processHandlers as Parameters<typeof process.subscribe>[0]);
  return {
    disable() {
      publish.unsubscribe(publishHandlers as Parameters<typeof publish.unsubscribe>[0]);
      process.unsubscribe(processHandlers as Parameters<typeof process.unsubscribe>[0]);
    },
  };
}

function meters(provider: MeterProvider): Instruments {
  const meter = provider.getMeter(NAME, VERSION);
  const advice = { explicitBucketBoundaries: DURATION_BUCKETS };
  return {
    sent: meter.createCounter("messaging.client.sent.messages", {
      unit: "{message}",
      description: "Messages a producer attempted to send to the broker (with error.type when it failed).",
    }),
    consumed: meter.createCounter("messaging.client.consumed.messages", {
      unit: "{message}",
      description: "Messages delivered to the application (one per handler call or iterator step).",
    }),
    operationDuration: meter.createHistogram("messaging.client.operation.duration", {
      unit: "s",
      description:
        "Duration of a publish, from the call to its promise settling (written, or confirmed in confirm mode).",
      advice,
    }),
    processDuration: meter.createHistogram("messaging.process.duration", {
      unit: "s",
      description: "Duration of processing one delivery: the handler's run, or one iterator step.",
      advice,
    }),
  };
}

/** One operation's measurements, with the attributes the conventions name for these metrics (no per-message ones: they would explode the series). */
function record(instruments: Instruments, ctx: PublishContext | ProcessContext, seconds: number): void {
  const error: Attributes =
    ctx.error === undefined ? {} : { "error.type": ctx.error instanceof Error ? ctx.error.name : "Error" };
  if ("message" in ctx) {
    const attributes = {
      ...common(ctx.server),
      "messaging.operation.name": "process",
      "messaging.operation.type": "process",
      "messaging.destination.name": ctx.message.fields.exchange,
      "messaging.destination.subscription.name": ctx.queue,
      ...error,
    };
    instruments.consumed.add(1, attributes);
    instruments.processDuration.record(seconds, attributes);
  } else {
    const attributes = {
      ...common(ctx.server),
      "messaging.operation.name": "publish",
      "messaging.operation.type": "send",
      "messaging.destination.name": ctx.exchange,
      ...error,
    };
    instruments.sent.add(1, attributes);
    instruments.operationDuration.record(seconds, attributes);
  }
}

function common(server: { address: string; port: number }) {
  return { "messaging.system": "rabbitmq", "server.address": server.address, "server.port": server.port };
}

function message(id: string | undefined, correlationId: string | undefined, size: number) {
  return {
    ...(id !== undefined ? { "messaging.message.id": id } : {}),
    ...(correlationId !== undefined ? { "messaging.message.conversation_id": correlationId } : {}),
    "messaging.message.body.size": size,
  };
}
