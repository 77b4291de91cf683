#!/usr/bin/env node
// The warren-emit-log-topic command: tutorial program emit_log_topic, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/emit_log_topic.js";
