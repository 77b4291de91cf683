/** The AMQP 0-9-1 codec: bytes <-> frames. Pure: no sockets, no timers, no promises. */
export * from "./constants.js";
export * from "./errors.js";
export * from "./reader.js";
export * from "./writer.js";
export * from "./table.js";
export * from "./properties.js";
export * from "./methods.js";
export * from "./frame.js";
export * from "./describe.js";
