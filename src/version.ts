/** warren's version, as the broker (client properties) and tracing (warren/otel) are told it; package.json's, which test/infra/version.test.ts checks. */
export const VERSION = "0.1.0";
