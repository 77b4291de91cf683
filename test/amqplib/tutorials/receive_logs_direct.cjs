#!/usr/bin/env node
// Tutorial 4, Routing: the consumer (keyed.cjs).
require("./keyed.cjs").receive("direct_logs", "direct", "receive_logs_direct [info] [warning] [error]");
