#!/usr/bin/env node
// The warren-worker command: tutorial program worker, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/worker.js";
