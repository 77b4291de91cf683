#!/usr/bin/env node
// The warren-rpc-server command: tutorial program rpc_server, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/rpc_server.js";
