#!/usr/bin/env node
// The warren-receive-logs command: tutorial program receive_logs, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/receive_logs.js";
