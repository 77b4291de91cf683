/**
 * vitest global setup: find the broker once per run, not once per worker, so that at most
 * one container is started, and hand it to the workers (and to the processes they spawn)
 * through AMQP_URL.
 *
 * Finding no broker does not fail the run: the protocol tests need none. The reason is
 * passed on instead, and every test that asks getBrokerUrl() fails with it.
 *
 * At the end it says what the run ran against (what it ran without, vitest.config.ts said first).
 */
import { BROKER_CONTAINER_ENV, BROKER_ERROR_ENV, findBroker } from "./broker.js";
import { redactUrl } from "../../src/client/url.js";

export default async function setup(): Promise<() => Promise<void>> {
  let stop = async (): Promise<void> => {};
  let against = "no broker";
  try {
    const found = await findBroker({ onProgress: (m) => console.log(`[warren tests] ${m}`) });
    process.env["AMQP_URL"] = found.url;
    if (found.containerId !== undefined) process.env[BROKER_CONTAINER_ENV] = found.containerId;
    stop = () => found.stop();
    against = `${redactUrl(found.url)} (${found.source})`;
  } catch (err) {
    process.env[BROKER_ERROR_ENV] = (err as Error).message;
  }
  return async () => {
    console.log(`[warren tests] ran against ${against}`);
    await stop();
  };
}
