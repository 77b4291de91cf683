/**
 * A content body longer than its header declared. The codec reads frames one at a time and
 * cannot see this; the check lives where content is assembled, in src/client/channel.ts
 * (Channel.onFrame, body case). A broker never does this, so a scripted fake server plays it:
 * the client must close the connection with 501 FRAME_ERROR (spec 4.2.6: the body frames carry
 * exactly body-size bytes) and fail the waiting call, never deliver a truncated or merged body.
 */
import { afterEach, expect, it } from "vitest";
import { connect } from "../../src/index.js";
import { FrameError } from "../../src/protocol/errors.js";
import {
  asMethod,
  bodyFrame,
  Connection,
  Cursor,
  FRAME_METHOD,
  headerFrame,
  longstr,
  methodFrame,
  shortstr,
  standardHandshake,
  startFakeServer,
  u32,
  u64,
  u8,
  type FakeServer,
} from "../helpers/fake-server.js";

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Answers channel.open and basic.get with a get-ok: a header declaring bodySize, then these body frames. */
async function overrunServer(
  bodySize: number,
  bodies: string[],
): Promise<{ server: FakeServer; closeCode: Promise<number> }> {
  let report!: (code: number) => void;
  const closeCode = new Promise<number>((resolve) => (report = resolve));
  const server = await startFakeServer(async (conn) => {
    await standardHandshake(conn);
    const open = await conn.expectMethod(20, 10);
    await conn.send(methodFrame(open.channel, 20, 11, longstr("")));
    const get = await conn.expectMethod(60, 70);
    const ch = get.channel;
    // basic.get-ok: delivery-tag, redelivered, exchange, routing-key, message-count
    await conn.send(
      Buffer.concat([
        methodFrame(ch, 60, 71, Buffer.concat([u64(1), u8(0), shortstr(""), shortstr("q"), u32(0)])),
        headerFrame(ch, 60, bodySize),
        ...bodies.map((b) => bodyFrame(ch, b)),
      ]),
    );
    for (;;) {
      const frame = await conn.readFrame();
      if (frame.type !== FRAME_METHOD) continue;
      const m = asMethod(frame);
      if (m.classId === Connection.classId && m.methodId === Connection.close) {
        report(new Cursor(m.args).u16());
        await conn.send(methodFrame(0, Connection.classId, Connection.closeOk));
        return;
      }
    }
  });
  cleanup.push(() => server.close());
  return { server, closeCode };
}

it.each([
  ["one body frame longer than the header's 3 bytes", 3, ["hello"]],
  ["a second body frame crossing the header's 4 bytes", 4, ["hel", "lo"]],
])("%s: connection closed with 501, the get fails with a FrameError", async (_label, bodySize, bodies) => {
  const { server, closeCode } = await overrunServer(bodySize, bodies);
  const conn = await connect(server.url());
  cleanup.push(() => conn.close());
  const ch = await conn.openChannel();
  const closed = new Promise<unknown>((resolve) => conn.once("close", resolve));
  const err = await ch.get("q").then(
    (m) => m,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FrameError);
  expect((err as FrameError).code).toBe(501);
  expect((err as FrameError).message).toMatch(/longer than the \d+ its header declared/);
  expect(await closeCode).toBe(501);
  expect(await closed).toBeInstanceOf(FrameError);
});

it("a body frame after the declared size was complete: the message is whole, the stray frame is 505", async () => {
  const { server, closeCode } = await overrunServer(5, ["hel", "lo", "!"]);
  const conn = await connect(server.url());
  cleanup.push(() => conn.close());
  const ch = await conn.openChannel();
  const closed = new Promise<unknown>((resolve) => conn.once("close", resolve));
  const msg = await ch.get("q");
  expect(msg?.body.toString()).toBe("hello");
  expect(await closeCode).toBe(505);
  expect(await closed).toMatchObject({ code: 505, message: expect.stringMatching(/without a header/) });
});

it("the same frames with the size the header declares deliver the whole body (the control case)", async () => {
  const { server } = await overrunServer(5, ["hel", "lo"]);
  const conn = await connect(server.url());
  cleanup.push(() => conn.close());
  const ch = await conn.openChannel();
  const msg = await ch.get("q");
  expect(msg?.body.toString()).toBe("hello");
});
