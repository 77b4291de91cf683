#!/usr/bin/env node
// The warren-send command: tutorial program send, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/send.js";
