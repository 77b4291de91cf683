/** Human-readable frames, for the tutorials' --trace and for error messages. */
import { FrameType } from "./constants.js";
import type { Frame } from "./frame.js";
import type { FieldValue } from "./table.js";

function show(v: FieldValue | Record<string, unknown>): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (v !== null && typeof v === "object") {
    const inner = Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${k}: ${show(x as FieldValue)}`);
    return `{${inner.join(", ")}}`;
  }
  return String(v);
}

/** One line per frame, e.g. `ch 1 basic.publish {exchange: "logs", routingKey: "", mandatory: false, immediate: false}`. */
export function describeFrame(frame: Frame, maxBody = 64): string {
  switch (frame.type) {
    case FrameType.Method: {
      const { name, ...args } = frame.method;
      return `ch ${frame.channel} ${name} ${show(args)}`;
    }
    case FrameType.Header:
      return `ch ${frame.channel} content-header {classId: ${frame.classId}, bodySize: ${frame.bodySize}, properties: ${show(frame.properties as Record<string, unknown>)}}`;
    case FrameType.Body: {
      const text = frame.payload.subarray(0, maxBody).toString("utf8");
      const more = frame.payload.length > maxBody ? "..." : "";
      return `ch ${frame.channel} content-body (${frame.payload.length} bytes) ${JSON.stringify(text)}${more}`;
    }
    case FrameType.Heartbeat:
      return "ch 0 heartbeat";
  }
}
