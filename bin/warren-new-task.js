#!/usr/bin/env node
// The warren-new-task command: tutorial program new_task, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/new_task.js";
