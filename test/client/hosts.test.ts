/** hostsToTry without a broker: the order of a url list at connect and at each reconnect round. */
import { expect, test } from "vitest";
import { connect } from "../../src/index.js";
import { hostOrder, hostsToTry } from "../../src/client/hosts.js";

test('"in-order" keeps the list; the host given up on goes last', () => {
  expect(hostsToTry(["a", "b", "c"], "in-order")).toEqual(["a", "b", "c"]);
  expect(hostsToTry(["a", "b", "c"], "in-order", "a")).toEqual(["b", "c", "a"]);
  expect(hostsToTry(["a", "b", "c"], "in-order", "b")).toEqual(["a", "c", "b"]);
  expect(hostsToTry(["a"], "in-order", "a")).toEqual(["a"]);
  expect(hostsToTry(["a", "b"], "in-order", "z")).toEqual(["a", "b"]);
});

test('"shuffle" gives every order of three hosts, each host first about a third of the time, and still the given-up one last', () => {
  let seed = 1;
  const random = () => ((seed = (seed * 48271) % 2147483647) - 1) / 2147483646;
  const orders = new Map<string, number>();
  for (let i = 0; i < 6000; i++) {
    const o = hostsToTry(["a", "b", "c"], "shuffle", undefined, random).join("");
    orders.set(o, (orders.get(o) ?? 0) + 1);
  }
  expect([...orders.keys()].sort()).toEqual(["abc", "acb", "bac", "bca", "cab", "cba"]);
  for (const n of orders.values()) expect(n).toBeGreaterThan(800); // 1000 expected each
  for (let i = 0; i < 100; i++) expect(hostsToTry(["a", "b", "c"], "shuffle", "b", random).at(-1)).toBe("b");
  // The list given is never changed.
  const list = ["a", "b", "c"] as const;
  hostsToTry(list, "shuffle", "a", random);
  expect(list).toEqual(["a", "b", "c"]);
});

test("a hostOrder that is neither is refused before connecting", async () => {
  expect(() => hostOrder("random")).toThrow(TypeError);
  await expect(connect({ url: "amqp://127.0.0.1:1", hostOrder: "random" as never })).rejects.toThrow(/hostOrder/);
});
