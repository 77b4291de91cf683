/**
 * One child process: one client, a list of scenarios, run in order. Each client gets a fresh
 * process per round, so neither its memory nor its JIT state leaks into another client's
 * figures. Prints one line per scenario: "@@RESULT <json>".
 */
import { CLIENTS } from "./clients/index.js";
import { Control } from "./control.js";
import { SCENARIOS, type Sizes } from "./scenarios/index.js";

export interface ChildJob {
  client: string;
  scenarios: string[];
  url: string;
  brokerPid: number | undefined;
  sizes: Sizes;
  /** --cpu-prof: a directory for one profile of each measured span, <scenario>-<client>-r<round>.cpuprofile. */
  profileDir?: string | undefined;
  round?: number;
}

const job = JSON.parse(process.argv[2]!) as ChildJob;
const load = CLIENTS[job.client];
if (load === undefined) throw new Error(`unknown client ${job.client}`);
const factory = await load();
const control = await Control.open(job.url);
for (const name of job.scenarios) {
  const scenario = SCENARIOS[name]!;
  if (job.profileDir)
    process.env.BENCH_CPU_PROF = `${job.profileDir}/${name}-${job.client}-r${job.round ?? 1}.cpuprofile`;
  try {
    const m = await scenario.run({
      url: job.url,
      brokerPid: job.brokerPid ?? undefined,
      factory,
      control,
      sizes: job.sizes,
    });
    process.stdout.write(`@@RESULT ${JSON.stringify({ scenario: name, client: job.client, m })}\n`);
  } catch (e) {
    process.stdout.write(
      `@@RESULT ${JSON.stringify({ scenario: name, client: job.client, error: e instanceof Error ? e.message : String(e) })}\n`,
    );
  }
}
await control.close();
// A client that leaves a timer or socket behind must not hold the round up.
process.exit(0);
