#!/usr/bin/env node
// The warren-receive command: tutorial program receive, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/receive.js";
