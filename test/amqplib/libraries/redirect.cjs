// What an npm `overrides` entry does for a library built on amqplib, done at resolution:
// `require("amqplib")` and `require("amqplib/callback_api")` get warren/amqplib (from source,
// through tsx) when AMQPLIB_TARGET is "warren"; amqplib itself otherwise.
const Module = require("node:module");
const { join } = require("node:path");

if (process.env.AMQPLIB_TARGET === "warren") {
  const src = join(__dirname, "../../../src/amqplib");
  const redirect = { amqplib: join(src, "index.ts"), "amqplib/callback_api": join(src, "callback_api.ts") };
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    return resolve.call(this, redirect[request] ?? request, ...rest);
  };
}
