#!/usr/bin/env node
// The warren-receive-logs-topic command: tutorial program receive_logs_topic, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/receive_logs_topic.js";
