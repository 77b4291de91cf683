#!/usr/bin/env node
/**
 * Tutorial 6, RPC: the server. It answers requests on `rpc_queue` with the Fibonacci
 * number of the integer in the request, sending the answer to the queue named by the
 * request's reply_to property and copying its correlation_id so the client can tell which
 * request the answer belongs to. With prefetch 1, several servers share the load evenly.
 *
 *   rpc_server
 */
import { main } from "./run.js";

/** The tutorial's Fibonacci, a stand-in for real work. */
function fib(n: number): number {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

main(async ({ ch, print, untilStopped }) => {
  await ch.queueDeclare("rpc_queue", { durable: true, arguments: { "x-queue-type": "quorum" } });
  await ch.prefetch(1);

  print(" [x] Awaiting RPC requests");
  await ch.consume("rpc_queue", async (msg) => {
    const text = msg.body.toString();
    const n = Number(text);
    print(` [.] fib(${text})`);
    const response =
      Number.isSafeInteger(n) && n >= 0 ? String(fib(n)) : `error: "${text}" is not a non-negative integer`;
    const { replyTo, correlationId } = msg.properties;
    if (replyTo) {
      await ch.publish("", replyTo, response, correlationId === undefined ? {} : { correlationId });
    }
    ch.ack(msg);
  });
  await untilStopped();
});
