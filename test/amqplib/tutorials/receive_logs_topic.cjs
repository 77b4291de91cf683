#!/usr/bin/env node
// Tutorial 5, Topics: the consumer (keyed.cjs).
require("./keyed.cjs").receive("topic_logs", "topic", "receive_logs_topic [binding_key]...");
