#!/usr/bin/env bash
# The README's test command (npm test): the whole suite against one RabbitMQ.
#
#   bash scripts/test.sh          RabbitMQ 4.3, started by scripts/rabbitmq43.sh (the default)
#   bash scripts/test.sh 3.10     the machine's own RabbitMQ (Debian bookworm's 3.10) on 5672
#
# The suite runs in vitest projects, one after the other: "default" (files in parallel on the
# shared broker), "serial" (tests that change the broker: alarms, stop_app), and with 4.3
# "cluster" (a three-node cluster whose nodes the tests kill and restart).
set -euo pipefail
cd "$(dirname "$0")/.."

broker="${1:-${WARREN_TEST_BROKER:-4.3}}"
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
  *)
    echo "usage: $0 [4.3|3.10]" >&2
    exit 2
    ;;
esac
echo "== tests against RabbitMQ $broker ($AMQP_URL)" >&2
npx vitest run --project default
npx vitest run --project serial --passWithNoTests
# The cluster is RabbitMQ 4.3's (scripts/rabbitmq43.sh cluster-start); its tests kill nodes.
if [[ "$broker" == 4.3 ]]; then
  bash scripts/rabbitmq43.sh cluster-start
  npx vitest run --project cluster
  bash scripts/rabbitmq43.sh cluster-stop
fi
