/**
 * warren: an AMQP 0-9-1 client for Node.js.
 *
 *   import { connect } from "warren";
 *   await using conn = await connect("amqp://localhost");
 *   const ch = await conn.openChannel();
 *
 * @module warren
 */
export { connect } from "./client/connect.js";
export { Connection, type FrameMessage } from "./client/connection.js";
export type {
  ConnectionEvents,
  ConnectionState,
  RecoveryEvents,
  ReconnectingInfo,
} from "./client/connection-events.js";
export type { ChannelStats, ConnectionStats, ConsumerStats, DeliveryStats, PublishStats } from "./client/stats.js";
export {
  Publisher,
  PublishInterruptedError,
  PublishRefusedError,
  type PublisherEvents,
  type PublisherOptions,
} from "./client/publisher.js";
export type { ConnectOptions, RecoveryOptions } from "./client/options.js";
export type { HostOrder } from "./client/hosts.js";
export type { Credentials, CredentialsProvider } from "./client/credentials.js";
export type {
  ChannelEvents,
  ConfirmSelectOptions,
  ExchangeDeclareOptions,
  QueueDeclareOptions,
  QueueDeclareResult,
  PublishOptions,
  WaitOptions,
} from "./client/channel-options.js";
export { Channel, type Publication } from "./client/channel.js";
export type { Consumer, ConsumerEvents } from "./client/consumer.js";
export { MessageStream, type ConsumeOptions } from "./client/message-stream.js";
export type { ResubscribeOptions } from "./client/resubscribe.js";
export { declareRetryTopology, RetryTopology, type RetryTopologyOptions } from "./client/retry.js";
export {
  acquiredCount,
  deliveryCount,
  type Message,
  type DeliveryFields,
  type ReturnedMessage,
} from "./client/message.js";
export { createRpcClient, type RpcClient, type RpcClientOptions, type RpcCallOptions } from "./client/rpc.js";
export { createRpcServer, type RpcServer, type RpcServerOptions, type RpcReply } from "./client/rpc-server.js";
export type { Mechanism } from "./client/sasl.js";
export { parseUrl, redactUrl, type ParsedUrl } from "./client/url.js";
export {
  AmqpError,
  FrameError,
  ChannelClosedError,
  ConnectionClosedError,
  NotFoundError,
  AccessRefusedError,
  ResourceLockedError,
  PreconditionFailedError,
  AuthenticationError,
  ConnectionForcedError,
  InvalidPathError,
  NotAllowedError,
  ResourceError,
  NotImplementedError,
  InternalError,
  ConfirmTimeoutError,
  ProtocolViolationError,
  TimeoutError,
  NackError,
  RpcError,
  ReturnedError,
  PublishBatchError,
  ConsumerCancelledError,
  ConsumerEndedError,
  ConsumerTimeoutError,
  DeprecatedFeatureError,
  DeprecatedFeatureWarning,
  IgnoredArgumentWarning,
  QueueArgumentError,
  AbortError,
  type Initiator,
  type CloseReason,
} from "./client/errors.js";
export type { BasicProperties } from "./protocol/properties.js";
export { typed, Decimal, TypedValue, type FieldTable, type FieldValue, type FieldTag } from "./protocol/table.js";
export { describeFrame } from "./protocol/describe.js";
export type { Frame, MethodFrame, HeaderFrame, BodyFrame, HeartbeatFrame } from "./protocol/frame.js";
export { ReplyCode } from "./protocol/constants.js";
