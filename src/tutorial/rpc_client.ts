#!/usr/bin/env node
/**
 * Tutorial 6, RPC: the client. As in the tutorial, it declares an exclusive callback
 * queue named by the server, sends its request to `rpc_queue` with reply_to set to that
 * queue and a fresh correlation_id, and waits for the answer carrying the same id (an
 * answer with another id is one this client no longer waits for, and is ignored).
 *
 * warren also offers this pattern ready-made over RabbitMQ's direct reply-to, without a
 * callback queue: `const rpc = await createRpcClient(ch); await rpc.call("", "rpc_queue", "30")`.
 *
 *   rpc_client [n]     (default 30)
 */
import { randomUUID } from "node:crypto";
import { main } from "./run.js";

main(async ({ ch, args, print }) => {
  const n = args[0] ?? "30";

  const { queue: callbackQueue } = await ch.queueDeclare("", { exclusive: true });
  const correlationId = randomUUID();
  let answered: (body: string) => void = () => {};
  const response = new Promise<string>((resolve) => {
    answered = resolve;
  });
  await ch.consume(
    callbackQueue,
    (msg) => {
      if (msg.properties.correlationId === correlationId) answered(msg.body.toString());
    },
    { noAck: true },
  );

  print(` [x] Requesting fib(${n})`);
  await ch.publish("", "rpc_queue", n, { replyTo: callbackQueue, correlationId });
  print(` [.] Got ${await response}`);
});
