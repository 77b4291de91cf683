/**
 * parseUrl: the amqp:// URI as RabbitMQ's "URI Specification" defines it. Unit tests, no broker.
 */
import { describe, expect, test } from "vitest";
import { parseUrl, redactUrl } from "../../src/index.js";

describe("parseUrl", () => {
  test("defaults: guest/guest, port 5672, vhost /", () => {
    expect(parseUrl("amqp://localhost")).toEqual({
      tls: false,
      hostname: "localhost",
      port: 5672,
      username: "guest",
      password: "guest",
      vhost: "/",
    });
  });

  test("amqps defaults to port 5671 and tls", () => {
    const u = parseUrl("amqps://broker.example");
    expect(u.tls).toBe(true);
    expect(u.port).toBe(5671);
  });

  test("explicit host, port, user and password", () => {
    const u = parseUrl("amqp://alice:s3cret@10.0.0.7:5673/prod");
    expect(u).toMatchObject({ hostname: "10.0.0.7", port: 5673, username: "alice", password: "s3cret", vhost: "prod" });
  });

  test("user and password are percent-decoded", () => {
    const u = parseUrl("amqp://us%40er:p%3Aa%2Fss%40w%25rd@host");
    expect(u.username).toBe("us@er");
    expect(u.password).toBe("p:a/ss@w%rd");
  });

  test("a user without a password gets an empty password", () => {
    expect(parseUrl("amqp://bob@host").password).toBe("");
  });

  test("vhost %2F is '/', and other escapes decode", () => {
    expect(parseUrl("amqp://host/%2F").vhost).toBe("/");
    expect(parseUrl("amqp://host/%2Fprod%2Fa").vhost).toBe("/prod/a");
    expect(parseUrl("amqp://host/caf%C3%A9").vhost).toBe("café");
  });

  test("no path and a lone '/' both mean the default vhost '/'", () => {
    expect(parseUrl("amqp://host").vhost).toBe("/");
    expect(parseUrl("amqp://host/").vhost).toBe("/");
  });

  test("IPv6 literal hosts lose their brackets", () => {
    const u = parseUrl("amqp://[::1]:5680/v");
    expect(u.hostname).toBe("::1");
    expect(u.port).toBe(5680);
  });

  test("query options heartbeat, frame_max, channel_max, connection_timeout", () => {
    const u = parseUrl("amqp://host/v?heartbeat=5&frame_max=8192&channel_max=10&connection_timeout=2500");
    expect(u).toMatchObject({ heartbeat: 5, frameMax: 8192, channelMax: 10, connectionTimeout: 2500 });
  });

  test("query connection_name and auth_mechanism; unknown options are ignored", () => {
    const u = parseUrl("amqp://host?connection_name=my%20app&auth_mechanism=amqplain&cacertfile=/x.pem");
    expect(u.connectionName).toBe("my app");
    expect(u.mechanism).toBe("AMQPLAIN");
    expect(u).not.toHaveProperty("cacertfile");
  });

  test("heartbeat=0 is kept (it means: no heartbeats)", () => {
    expect(parseUrl("amqp://host?heartbeat=0").heartbeat).toBe(0);
  });

  test("a non-integer or negative query number is a TypeError naming the option", () => {
    expect(() => parseUrl("amqp://host?heartbeat=abc")).toThrow(/heartbeat/);
    expect(() => parseUrl("amqp://host?frame_max=-1")).toThrow(TypeError);
    expect(() => parseUrl("amqp://host?channel_max=1.5")).toThrow(/channel_max/);
  });

  test("a query key named like an Object.prototype member is an unknown option, ignored", () => {
    const u = parseUrl("amqp://host?constructor=1&toString=2&__proto__=3");
    expect(u).toEqual(parseUrl("amqp://host"));
  });

  test("a malformed percent-escape is a TypeError naming the part, not showing it", () => {
    expect(() => parseUrl("amqp://us%ZZer@host")).toThrow(
      new TypeError("AMQP URI: the user has a malformed percent-escape"),
    );
    expect(() => parseUrl("amqp://user:hunt%E0r2@host")).toThrow(
      new TypeError("AMQP URI: the password has a malformed percent-escape"),
    );
    expect(() => parseUrl("amqp://host/v%ZZ")).toThrow(
      new TypeError("AMQP URI: the vhost has a malformed percent-escape"),
    );
  });

  test("another scheme is refused", () => {
    expect(() => parseUrl("http://host")).toThrow(/amqp:\/\/ or amqps:\/\//);
  });

  test("an unparsable URI is a TypeError that does not leak the password", () => {
    let err: unknown;
    try {
      parseUrl("amqp://user:hunter2@:::bad");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).not.toContain("hunter2");
  });
});

test("redactUrl hides the password and nothing else, and leaves what is not a URL with one alone", () => {
  expect(redactUrl("amqp://guest:s3cr%2Ft@127.0.0.1:5672/%2F")).toBe("amqp://guest:***@127.0.0.1:5672/%2F");
  expect(redactUrl("amqps://u:p@h")).toBe("amqps://u:***@h");
  expect(redactUrl("amqp://u@h/v")).toBe("amqp://u@h/v");
  expect(redactUrl("amqp://h:5672")).toBe("amqp://h:5672");
  expect(redactUrl("not a url")).toBe("not a url");
});
