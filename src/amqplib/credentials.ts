/** amqplib's `credentials`: the SASL mechanisms as objects connect() takes in its socket options. */
import type { Credentials } from "./types.js";

/** SASL PLAIN: NUL, user, NUL, password. */
function plain(username: string, password: string): Credentials & { username: string; password: string } {
  return { mechanism: "PLAIN", response: () => Buffer.from(`\u0000${username}\u0000${password}`), username, password };
}

/** RabbitMQ's AMQPLAIN: the fields LOGIN and PASSWORD of a field table, as long strings, without the table's length. */
function amqplain(username: string, password: string): Credentials & { username: string; password: string } {
  const field = (name: string, value: string) => {
    const v = Buffer.from(value);
    const head = Buffer.alloc(1 + name.length + 5);
    head.writeUInt8(name.length, 0);
    head.write(name, 1, "latin1");
    head.write("S", 1 + name.length, "latin1");
    head.writeUInt32BE(v.length, 2 + name.length);
    return Buffer.concat([head, v]);
  };
  return {
    mechanism: "AMQPLAIN",
    response: () => Buffer.concat([field("LOGIN", username), field("PASSWORD", password)]),
    username,
    password,
  };
}

/** SASL EXTERNAL: the TLS client certificate says who. */
function external(): Credentials {
  return { mechanism: "EXTERNAL", response: () => Buffer.alloc(0) };
}

export const credentials = { plain, amqplain, external };
