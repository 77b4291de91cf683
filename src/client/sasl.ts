/**
 * SASL mechanisms for connection.start-ok (spec 1.4.2.2; RabbitMQ "Authentication, Authorisation,
 * Access Control"): PLAIN (RFC 4616), AMQPLAIN (RabbitMQ's: a field table without its length
 * prefix, keys LOGIN and PASSWORD) and EXTERNAL (identity from the TLS client certificate).
 */
import { Writer } from "../protocol/writer.js";
import { encodeTable } from "../protocol/table.js";

/** The SASL mechanisms warren speaks. */
export type Mechanism = "PLAIN" | "AMQPLAIN" | "EXTERNAL";

export function saslResponse(mechanism: Mechanism, username: string, password: string): Buffer {
  switch (mechanism) {
    case "PLAIN":
      return Buffer.from(`\0${username}\0${password}`, "utf8");
    case "AMQPLAIN": {
      const w = new Writer(256);
      encodeTable(w, { LOGIN: username, PASSWORD: password });
      return Buffer.from(w.take().subarray(4));
    }
    case "EXTERNAL":
      return Buffer.alloc(0);
  }
}
