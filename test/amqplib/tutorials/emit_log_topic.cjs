#!/usr/bin/env node
// Tutorial 5, Topics: the producer (keyed.cjs).
require("./keyed.cjs").emit("topic_logs", "topic", "anonymous.info");
