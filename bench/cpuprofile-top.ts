/**
 * Top self-time functions of a V8 .cpuprofile (from `node --cpu-prof`):
 *   npx tsx bench/cpuprofile-top.ts <file.cpuprofile> [count]
 * How warren's hot paths were found: profile one client in one scenario, e.g.
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/child.ts '{"client":"warren","scenarios":["publish-16B"],...}'
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) throw new Error("usage: cpuprofile-top.ts <file.cpuprofile> [count]");
const count = Number(process.argv[3] ?? 25);
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  const n = byId.get(p.samples[i]!)!;
  const dt = p.timeDeltas[i] ?? 0;
  total += dt;
  const f = n.callFrame;
  const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/^.*\/(node_modules\/|src\/|bench\/)/, "$1")}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + dt);
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, count);
for (const [k, v] of rows)
  console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${(v / 1000).toFixed(0).padStart(6)} ms  ${k}`);
