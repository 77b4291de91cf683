#!/usr/bin/env node
// The warren-emit-log-direct command: tutorial program emit_log_direct, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/emit_log_direct.js";
