/** How the layer emits (a module of its own, imported by the callback API's bundle as it is). */

/**
 * Every event the layer emits: a listener that throws is reported as amqplib reports it, by a
 * "handler-error" event (the error, the event's name) when someone listens for those; otherwise
 * by a process warning, where amqplib lets the error through into its frame handling.
 */
export function safeEmit(emitter: NodeJS.EventEmitter, event: string, ...args: unknown[]): void {
  try {
    emitter.emit(event, ...args);
  } catch (e) {
    if (emitter.listenerCount("handler-error") > 0) setImmediate(() => emitter.emit("handler-error", e, event));
    else
      process.emitWarning(`warren/amqplib: a "${event}" listener threw: ${e instanceof Error ? e.message : String(e)}`);
  }
}
