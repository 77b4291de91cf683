#!/usr/bin/env node
// The warren-publisher-confirms command: tutorial program publisher_confirms, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/publisher_confirms.js";
