/**
 * Tutorial 1, "Hello World!": send and receive over the queue `hello`. The queue name is
 * fixed, so its tests share this file and run in sequence.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { cleanUpPrograms, ok, deleteQueue, start, useOwnVhost } from "./programs.js";

const WAITING = " [*] Waiting for messages. To exit press CTRL+C";

cleanUpPrograms();
useOwnVhost("hello");

describe.sequential("tutorial 1: hello world", () => {
  beforeAll(() => deleteQueue("hello"));

  test("send puts 'Hello World!' on hello and receive prints it", async () => {
    const receiver = await start("receive");
    expect(await receiver.ready()).toBe(WAITING);

    expect(await ok("send")).toEqual([" [x] Sent 'Hello World!'"]);
    await receiver.line(" [x] Received Hello World!");
    expect(receiver.lines).toEqual([WAITING, " [x] Received Hello World!"]);

    expect((await receiver.stop()).code).toBe(0);
  });

  test("a named queue keeps what was sent while no receiver ran, unlike a temporary one", async () => {
    expect(await ok("send")).toEqual([" [x] Sent 'Hello World!'"]);
    expect(await ok("send")).toEqual([" [x] Sent 'Hello World!'"]);

    const receiver = await start("receive");
    await receiver.until("both messages", () => receiver.lines.length === 3);
    expect(receiver.lines).toEqual([WAITING, " [x] Received Hello World!", " [x] Received Hello World!"]);
    expect((await receiver.stop("SIGTERM")).code).toBe(0);
  });
});
