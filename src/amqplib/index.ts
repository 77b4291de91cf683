/**
 * warren/amqplib: amqplib 2.x's promise API over warren. An amqplib program changes its import
 * (or one `overrides` line in package.json for the libraries built on amqplib) and keeps its
 * code; what deliberately differs is listed in src/amqplib/README.md.
 */
export { connect, type ChannelModel } from "./model.js";
export type { Channel, ConfirmChannel, ConnectionInfo as Connection } from "./channel.js";
export { RecoveringChannelModel, type RecoveryOptions } from "./recovering.js";
export { credentials } from "./credentials.js";
export { IllegalOperationError } from "./errors.js";
export type * from "./types.js";
