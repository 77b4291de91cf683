#!/usr/bin/env bash
# Makes sure a RabbitMQ answers AMQP 0-9-1 on 127.0.0.1:5672, in a sane state, for the tests
# (.ci/run) and the demo (scripts/demo). Idempotent: on a machine where the broker already
# runs it only checks it and puts back what an interrupted test may have changed.
#
#   1. rabbitmq-server / rabbitmqctl missing  -> apt-get install -y rabbitmq-server
#   2. nothing answers on 5672                -> rabbitmqctl start_app if the Erlang node runs
#                                                 with its app stopped, else rabbitmq-server -detached
#   3. wait (bounded) until 5672 answers the AMQP protocol header with connection.start
#   4. vm_memory_high_watermark back to 0.4 (the memory-alarm test lowers it) and the app started
#
#   ensure-broker.sh              all four steps (CI: tests expect the broker's defaults)
#   ensure-broker.sh --no-reset   steps 1-3 only (the demo: a user's own settings are kept)
#
# With AMQP_URL set the user has chosen a broker: this script leaves the machine alone.
# WARREN_BROKER_WAIT_SECONDS bounds step 3 (default 120). Exits non-zero with one clear
# message when any step fails.
set -euo pipefail

HOST=127.0.0.1
# RabbitMQ's own variable for its AMQP port; with RABBITMQ_NODENAME (which rabbitmqctl and
# rabbitmq-server honour) it points this script at another node, e.g. a scratch node for
# trying the script out without touching the machine's broker.
PORT="${RABBITMQ_NODE_PORT:-5672}"
WAIT_SECONDS="${WARREN_BROKER_WAIT_SECONDS:-120}"
RESET=1
case "${1:-}" in
  "") ;;
  --no-reset) RESET=0 ;;
  *)
    echo "usage: $0 [--no-reset]" >&2
    exit 2
    ;;
esac

# The Debian package puts its commands in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/lib/rabbitmq/bin"

say() { printf '[ensure-broker] %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

if [[ -n "${AMQP_URL:-}" ]]; then
  say "AMQP_URL is set; using that broker and leaving the local one alone."
  exit 0
fi

# Root runs the broker's commands directly; anyone else needs sudo for them.
as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "'$*' needs root, and sudo is not installed. Run this as root, or install and start RabbitMQ yourself (or set AMQP_URL)."
  fi
}

# rabbitmqctl, bounded: a node that is down can make it hang for a while.
ctl() { as_root env "PATH=$PATH" timeout 60 rabbitmqctl "$@"; }

# True when HOST:PORT answers the protocol header "AMQP\0\0\x09\x01" with a method frame
# (type 1) on channel 0 -- connection.start. An open port alone is not enough.
answers_amqp() {
  local first
  first="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    head -c 3 <&3 | od -An -tx1 | tr -d " \n"
  ' "$HOST" "$PORT" 2>/dev/null)" || return 1
  [[ "$first" == "010000" ]]
}

# 1. Installed?
if ! command -v rabbitmq-server >/dev/null 2>&1 || ! command -v rabbitmqctl >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 ||
    die "RabbitMQ is not installed and there is no apt-get to install it with. Install RabbitMQ (https://www.rabbitmq.com/docs/download), start it, and run this again, or set AMQP_URL."
  say "RabbitMQ is not installed: apt-get install -y rabbitmq-server"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine.
  as_root apt-get install -y rabbitmq-server ||
    { as_root apt-get update && as_root apt-get install -y rabbitmq-server; } ||
    die "apt-get install -y rabbitmq-server failed (see above)."
  command -v rabbitmq-server >/dev/null 2>&1 || die "rabbitmq-server is still missing after apt-get install."
fi

# 2. Running?
if answers_amqp; then
  say "RabbitMQ answers on $HOST:$PORT."
else
  if ctl -q ping >/dev/null 2>&1; then
    # The Erlang node is up but does not listen: an interrupted test left the app stopped.
    say "The RabbitMQ node runs with its app stopped: rabbitmqctl start_app"
    ctl start_app >/dev/null || die "rabbitmqctl start_app failed."
  else
    say "Starting RabbitMQ: rabbitmq-server -detached"
    as_root rabbitmq-server -detached || die "rabbitmq-server -detached failed."
  fi

  # 3. Wait until it answers.
  deadline=$((SECONDS + WAIT_SECONDS))
  until answers_amqp; do
    if ((SECONDS >= deadline)); then
      die "RabbitMQ did not answer AMQP on $HOST:$PORT within ${WAIT_SECONDS}s. Its logs are in /var/log/rabbitmq/; 'rabbitmqctl status' tells more."
    fi
    sleep 1
  done
  say "RabbitMQ answers on $HOST:$PORT."
fi

if ((RESET == 0)); then
  exit 0
fi

# 4. A sane state. Both commands are idempotent; a failure here means rabbitmqctl cannot
# reach the node (e.g. another user's Erlang cookie), which the tests that use it would hit.
ctl start_app >/dev/null || die "rabbitmqctl start_app failed: rabbitmqctl cannot manage the local node."
ctl set_vm_memory_high_watermark 0.4 >/dev/null || die "rabbitmqctl set_vm_memory_high_watermark 0.4 failed."
answers_amqp || die "RabbitMQ stopped answering on $HOST:$PORT."
say "RabbitMQ is ready (app started, vm_memory_high_watermark 0.4)."
