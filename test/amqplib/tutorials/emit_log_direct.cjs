#!/usr/bin/env node
// Tutorial 4, Routing: the producer (keyed.cjs).
require("./keyed.cjs").emit("direct_logs", "direct", "info");
