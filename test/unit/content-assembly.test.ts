/** ContentAssembly without a socket: method, header, body frames -> one message (spec 4.2.6). */
import { expect, test } from "vitest";
import { ClassId } from "../../src/protocol/constants.js";
import { FrameError } from "../../src/protocol/errors.js";
import { FrameType } from "../../src/protocol/constants.js";
import type { HeaderFrame } from "../../src/protocol/frame.js";
import { ContentAssembly, TOO_LARGE } from "../../src/client/content.js";

const deliver = {
  name: "basic.deliver",
  consumerTag: "c",
  deliveryTag: 1,
  redelivered: false,
  exchange: "",
  routingKey: "q",
} as const;
const header = (bodySize: number): HeaderFrame => ({
  type: FrameType.Header,
  channel: 1,
  classId: ClassId.basic,
  bodySize,
  properties: { contentType: "text/plain" },
});

function assembly(max = 1000) {
  const got: { body: string; contentType: string | undefined }[] = [];
  const a = new ContentAssembly(
    1,
    () => max,
    (_m, p, body) => got.push({ body: body.toString(), contentType: p.contentType }),
  );
  return { a, got };
}
const code = (fn: () => void) => {
  try {
    fn();
  } catch (e) {
    return (e as FrameError).code;
  }
  return undefined;
};

test("a body in any number of frames is one message, once, with its header's properties", () => {
  const { a, got } = assembly();
  a.begin(deliver);
  expect(a.expecting).toBe(true);
  expect(a.header(header(11))).toBeUndefined();
  for (const part of ["hel", "lo ", "world"]) a.body(Buffer.from(part));
  expect(got).toEqual([{ body: "hello world", contentType: "text/plain" }]);
  expect(a.expecting).toBe(false);
});

test("an empty body completes at its header, with no body frame", () => {
  const { a, got } = assembly();
  a.begin(deliver);
  a.header(header(0));
  expect(got).toEqual([{ body: "", contentType: "text/plain" }]);
});

test("out of order is 505, a body longer than declared 501, a header over maxMessageSize refused unbuffered", () => {
  const { a } = assembly(10);
  expect(code(() => a.header(header(1)))).toBe(505); // no method before it
  expect(code(() => a.body(Buffer.from("x")))).toBe(505); // no header before it
  a.begin(deliver);
  expect(a.header(header(11))).toBe(TOO_LARGE);
  a.reset();
  a.begin(deliver);
  a.header(header(2));
  expect(code(() => a.body(Buffer.from("abc")))).toBe(501);
});

test("reset() drops a message half assembled; the next one is whole", () => {
  const { a, got } = assembly();
  a.begin(deliver);
  a.header(header(6));
  a.body(Buffer.from("old"));
  a.reset();
  a.begin(deliver);
  a.header(header(3));
  a.body(Buffer.from("new"));
  expect(got.map((m) => m.body)).toEqual(["new"]);
});
