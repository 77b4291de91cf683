#!/usr/bin/env node
// The warren-emit-log command: tutorial program emit_log, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/emit_log.js";
