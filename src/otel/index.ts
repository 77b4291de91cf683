/**
 * warren/otel: OpenTelemetry tracing for warren, over the tracing channels warren publishes
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
 * @opentelemetry/api is an optional peer dependency: only this entry point needs it.
 *
 * @module warren/otel
 */
import diagnostics from "node:diagnostics_channel";
import { SpanKind, SpanStatusCode, context, propagation, trace, type Context, type Span, type TextMapGetter, type TextMapSetter, type Tracer, type TracerProvider } from "@opentelemetry/api";
import type { ProcessContext, PublishContext } from "../client/diagnostics.js";
import type { FieldTable } from "../protocol/table.js";
import { VERSION } from "../version.js";

/** Options of instrumentWarren(). */
export interface WarrenInstrumentationOptions {
  /** Default: the global tracer provider (trace.getTracerProvider()). */
  tracerProvider?: TracerProvider;
}

/** What instrumentWarren() returns: the instrumentation, to disable. */
export interface WarrenInstrumentation {
  /** Stop making spans: every channel subscription is removed. */
  disable(): void;
}

const NAME = "warren";

/** The span of an operation in flight, kept on its tracing context. */
const SPAN = Symbol("warren.otel.span");
type WithSpan = { [SPAN]?: Span };

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
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(NAME, VERSION);
  const publish = diagnostics.tracingChannel<PublishContext>("warren:publish");
  const process = diagnostics.tracingChannel<ProcessContext>("warren:process");

  const finish = (ctx: (PublishContext | ProcessContext) & WithSpan) => {
    const span = ctx[SPAN];
    if (span === undefined) return;
    if (ctx.error !== undefined) {
      span.recordException(ctx.error instanceof Error ? ctx.error : String(ctx.error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.error instanceof Error ? ctx.error.message : String(ctx.error) });
      span.setAttribute("error.type", ctx.error instanceof Error ? ctx.error.name : "Error");
    }
    span.end();
    delete ctx[SPAN];
  };

  const publishHandlers = {
    start(ctx: PublishContext & WithSpan) {
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
            ...(m.fields.routingKey !== "" ? { "messaging.rabbitmq.destination.routing_key": m.fields.routingKey } : {}),
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
