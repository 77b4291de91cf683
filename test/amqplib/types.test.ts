/**
 * warren/amqplib against amqplib's own type definitions (amqplib 2.x bundles them): what it
 * exports is assignable to amqplib's types, and amqplib's option and reply types to its, so code
 * typed against amqplib compiles unchanged. Checked by the type check (npm run typecheck, which
 * covers test/); the test below checks that the runtime exports are the ones amqplib has.
 */
import * as amqplib from "amqplib";
import { expect, test } from "vitest";
import * as amqplibCallback from "amqplib/callback_api";
import * as warren from "../../src/amqplib/index.js";
import * as warrenCallback from "../../src/amqplib/callback_api.js";

/** Never called: it compiles only if warren/amqplib can stand where amqplib is used. */
export async function typedAgainstAmqplib(
  url: string,
  options: amqplib.Options.Connect,
  socket: amqplib.SocketOptions,
): Promise<void> {
  const connect: (
    url: string | amqplib.Options.Connect,
    socketOptions?: amqplib.SocketOptions,
  ) => Promise<amqplib.ChannelModel> = warren.connect;
  const model: amqplib.ChannelModel = await connect(url, socket);
  const again: amqplib.ChannelModel = await warren.connect(options);
  const ch: amqplib.Channel = await model.createChannel();
  const confirm: amqplib.ConfirmChannel = await again.createConfirmChannel({ highWaterMark: 16 });
  const q: amqplib.Replies.AssertQueue = await ch.assertQueue("", {
    exclusive: true,
    messageTtl: 1000,
  } satisfies amqplib.Options.AssertQueue);
  const x: amqplib.Replies.AssertExchange = await ch.assertExchange("x", "fanout", { alternateExchange: "ae" });
  const tag: amqplib.Replies.Consume = await ch.consume(q.queue, (m: amqplib.ConsumeMessage | null) => m && ch.ack(m), {
    priority: 1,
  });
  const got: amqplib.GetMessage | false = await ch.get(q.queue, { noAck: false });
  if (got !== false) ch.nack(got, false, true);
  const ok: boolean = confirm.publish(
    x.exchange,
    "",
    Buffer.from("m"),
    { persistent: true },
    (err: unknown) => void err,
  );
  await confirm.waitForConfirms();
  const cancelled: amqplib.Replies.Cancel = await ch.cancel(tag.consumerTag);
  const recovering: amqplib.RecoveringChannelModel = await warren.connect(url, {
    recovery: { initialDelay: 10, setup: async (m: amqplib.ChannelModel) => void (await m.createChannel()) },
  });
  const fromRecovering: amqplib.Channel = await recovering.createChannel();
  void fromRecovering;
  const creds: typeof amqplib.credentials = warren.credentials;
  const error: amqplib.IllegalOperationError = new warren.IllegalOperationError("Channel closed");
  void [ok, cancelled, creds, error];
  await model.close();
}

test("the runtime exports are amqplib's: connect, credentials, IllegalOperationError", () => {
  for (const name of ["connect", "credentials", "IllegalOperationError"] as const)
    expect(typeof warren[name], name).toBe(typeof amqplib[name]);
  expect(Object.keys(warren.credentials).sort()).toEqual(Object.keys(amqplib.credentials).sort());
  expect(new warren.IllegalOperationError("x").name).toBe("IllegalOperationError");
});

/** Never called: code typed against amqplib/callback_api compiles against warren/amqplib/callback_api. */
export function typedAgainstCallbackApi(url: string): void {
  const connect: typeof amqplibCallback.connect = warrenCallback.connect;
  connect(url, (err: Error, conn: amqplibCallback.Connection) => {
    if (err) return;
    const ch: amqplibCallback.Channel = conn.createChannel((e: Error, c: amqplibCallback.Channel) => void [e, c]);
    ch.assertQueue("q", { durable: false }, (e: Error, ok: amqplibCallback.Replies.AssertQueue) => void [e, ok.queue]);
    ch.consume(
      "q",
      (m: amqplibCallback.ConsumeMessage | null) => m && ch.ack(m),
      {},
      (e: Error, ok: amqplibCallback.Replies.Consume) => void [e, ok],
    );
    conn.createConfirmChannel((e: Error, cc: amqplibCallback.ConfirmChannel) => {
      cc.sendToQueue("q", Buffer.from("m"), {}, (e2: Error) => void e2);
      cc.waitForConfirms((e3?: Error) => void [e, e3]);
    });
  });
  // The connection warren/amqplib/callback_api hands out stands where amqplib's is expected.
  warrenCallback.connect(url, (err: unknown, conn: warrenCallback.CallbackModel) => {
    if (err) return;
    const model: amqplibCallback.Connection = conn;
    void model;
  });
  const creds: typeof amqplibCallback.credentials = warrenCallback.credentials;
  void creds;
}

test("the callback API's runtime exports are amqplib/callback_api's", () => {
  for (const name of ["connect", "credentials", "IllegalOperationError"] as const)
    expect(typeof warrenCallback[name], name).toBe(typeof amqplibCallback[name]);
});
