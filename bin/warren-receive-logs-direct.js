#!/usr/bin/env node
// The warren-receive-logs-direct command: tutorial program receive_logs_direct, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/receive_logs_direct.js";
