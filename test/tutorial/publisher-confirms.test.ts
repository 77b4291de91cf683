/**
 * Tutorial 7, Publisher confirms: the three strategies complete and report like the
 * official Java program. Counts are small; how long they took is printed, never asserted.
 */
import { describe, expect, test } from "vitest";
import { cleanUpPrograms, ok, run } from "./programs.js";

cleanUpPrograms();

describe("tutorial 7: publisher confirms", () => {
  test("publishes individually, in batches and asynchronously, each confirmed", async () => {
    const lines = await ok("publisher_confirms", ["1234"]);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^Published 1,234 messages individually in [\d,]+ ms$/);
    expect(lines[1]).toMatch(/^Published 1,234 messages in batch in [\d,]+ ms$/);
    expect(lines[2]).toMatch(/^Published 1,234 messages and handled confirms asynchronously in [\d,]+ ms$/);
  });

  test("a count that is not a batch multiple, and a single message, work too", async () => {
    expect(await ok("publisher_confirms", ["1"])).toEqual([
      expect.stringMatching(/^Published 1 messages individually in [\d,]+ ms$/),
      expect.stringMatching(/^Published 1 messages in batch in [\d,]+ ms$/),
      expect.stringMatching(/^Published 1 messages and handled confirms asynchronously in [\d,]+ ms$/),
    ]);
  });

  test("a count that is not a positive integer fails with one line", async () => {
    const exit = await run("publisher_confirms", ["many"]);
    expect(exit.code).toBe(1);
    expect(exit.stdout).toEqual([]);
    expect(exit.stderr).toBe('publisher_confirms: the message count must be a positive integer, not "many"\n');
  });
});
