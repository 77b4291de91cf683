#!/usr/bin/env node
// The warren-rpc-client command: tutorial program rpc_client, built into dist/ (npm run build; prepack runs it).
import "../dist/tutorial/rpc_client.js";
