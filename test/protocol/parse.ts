/** The codec tests' way to read bytes back: every frame the parser makes of them, at once. */
import { expect } from "vitest";
import { FrameParser, type Frame } from "../../src/protocol/index.js";

/** Every frame in `bytes`, which must hold whole frames only: no bytes may be left unparsed. */
export function parseAll(bytes: Buffer, maxFrameSize = 1 << 24): Frame[] {
  const p = new FrameParser(maxFrameSize);
  p.push(bytes);
  const out: Frame[] = [];
  for (let f = p.next(); f !== undefined; f = p.next()) out.push({ ...f }); // the parser refills its frames
  expect(p.buffered, "bytes left unparsed").toBe(0);
  return out;
}
