/**
 * warren/amqplib against amqplib's own type definitions (amqplib 2.x bundles them): what it
 * exports is assignable to amqplib's types, and amqplib's option and reply types to its, so code
 * typed against amqplib compiles unchanged. Checked by the type check (npm run typecheck, which
 * covers test/); the test below checks that the runtime exports are the ones amqplib has.
 */
import * as amqplib from "amqplib";
import { expect, test } from "vitest";
import * as warren from "../../src/amqplib/index.js";

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
