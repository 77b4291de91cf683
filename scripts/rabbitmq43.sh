#!/usr/bin/env bash
# RabbitMQ 4.3 for the tests, beside the machine's own broker and never touching it.
#
# RabbitMQ 4.3 comes from Debian's packages: Debian sid has rabbitmq-server 4.3 (with Erlang
# 29). It is installed into a Debian sid root made with debootstrap in .brokers/sid (git-ignored;
# WARREN_SID_ROOT moves it), and each node runs there as the root's rabbitmq user, with its own
# node name, AMQP port, distribution port and epmd port, all on 127.0.0.1.
#
#   rabbitmq43.sh install          debootstrap the root and apt-get install rabbitmq-server (once)
#   rabbitmq43.sh start [NODE]     start a node (default "single") and wait until it answers AMQP
#   rabbitmq43.sh stop [NODE]      stop it (nothing to do if it is not running)
#   rabbitmq43.sh kill NODE        SIGKILL the node's Erlang VM, as a crash would
#   rabbitmq43.sh pid NODE         print the pid of the node's Erlang VM (nothing if it is down)
#   rabbitmq43.sh reset [NODE]     stop it and delete its data, then start it empty
#   rabbitmq43.sh ctl NODE ARGS... rabbitmqctl ARGS against that node (also: queues, plugins, diagnostics)
#   rabbitmq43.sh url [NODE]       print its amqp:// URL
#   rabbitmq43.sh signing-key NODE ID JWK   add a JWT signing key to the node (the "oauth" node's tests make theirs)
#   rabbitmq43.sh cluster-start    start nodes c1 c2 c3 and join them into one cluster
#   rabbitmq43.sh cluster-stop     stop the three (they form the same cluster when started again)
#   rabbitmq43.sh cluster-teardown stop the three and delete their data: the next start is a new cluster
#
# Nodes: "single" (AMQP 5673) is the broker `npm test` runs against; "strict" (5674) denies
# deprecated features (test/client/rabbitmq43.test.ts); "oauth" (5675) authenticates with OAuth 2
# tokens (JWTs for resource server "warren", signed with a key its tests add) and then with its
# internal users (test/client/oauth2.test.ts); c1, c2, c3 (AMQP 5681-5683) form the cluster. Every
# command is idempotent and exits non-zero with one clear line on failure; `start` refuses a port
# already served by another checkout's node (or an older run's, whose root is gone).
# Facts this relies on (seen on the machine): apt inside sid needs Acquire::Check-Valid-Until=false
# (the sid Release file is often past its validity date); the root needs /etc/hosts or the node
# hangs at boot; a node's startup reads LOGS and RABBITMQ_* from its environment, so it is started
# with a clean one.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="${WARREN_SID_ROOT:-$HERE/../.brokers/sid}"
mkdir -p "$(dirname "$ROOT")"
ROOT="$(cd "$(dirname "$ROOT")" && pwd -P)/$(basename "$ROOT")"
WAIT_SECONDS="${WARREN_BROKER_WAIT_SECONDS:-120}"
APT=(apt-get -o Acquire::Check-Valid-Until=false -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 -q)

say() { printf '[rabbitmq43] %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}
[[ "$(id -u)" -eq 0 ]] || die "this script runs as root (it uses chroot); run it with sudo."

# node -> "amqp_port dist_port epmd_port"
node_ports() {
  case "$1" in
    single) echo "5673 25673 4373" ;;
    strict) echo "5674 25674 4373" ;;
    oauth) echo "5675 25675 4373" ;;
    c1) echo "5681 25681 4381" ;;
    c2) echo "5682 25682 4381" ;;
    c3) echo "5683 25683 4381" ;;
    *) die "unknown node '$1' (single, strict, oauth, c1, c2 or c3)" ;;
  esac
}

# Runs a command in the root as its rabbitmq user, with only the environment a node needs.
in_root() {
  local node="$1"
  shift
  local amqp dist epmd
  read -r amqp dist epmd < <(node_ports "$node")
  chroot --userspec=rabbitmq:rabbitmq "$ROOT" /usr/bin/env -i \
    HOME=/var/lib/rabbitmq PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    RABBITMQ_NODENAME="warren-$node@localhost" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$amqp" RABBITMQ_DIST_PORT="$dist" \
    ERL_EPMD_PORT="$epmd" ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_MNESIA_BASE="/var/lib/rabbitmq/nodes/$node" RABBITMQ_LOG_BASE="/var/log/rabbitmq/$node" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RABBITMQ_CONFIG_FILE="/etc/rabbitmq/warren-$node.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="/etc/rabbitmq/warren-$node.advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="/etc/rabbitmq/warren-$node.plugins" \
    "$@"
}

ctl() {
  local node="$1"
  shift
  in_root "$node" timeout 60 /usr/sbin/rabbitmqctl "$@"
}

installed() { [[ -x "$ROOT/usr/sbin/rabbitmq-server" && -f "$ROOT/etc/hosts" ]] && grep -q resource_server_id "$ROOT/etc/rabbitmq/warren-oauth.advanced.config" 2>/dev/null; }

# Each node's rabbitmq.conf. "strict" denies the deprecated features the next releases will
# deny (and 4.3 denies some of already), so tests can see what a refusal looks like.
# Every node: the root has no /proc (nothing is mounted into it), where RabbitMQ's memory monitor
# reads the machine's memory and its own RSS; without these two lines the monitor does not run,
# and memory alarms (test/serial/blocked.test.ts) cannot be raised.
# "oauth": tokens first (a password that is no JWT falls through to the internal users, so
# guest still gets in for the tests' own setup), for resource server "warren"; no signing key is
# configured, the tests add theirs (signing-key).
write_configs() {
  local n common=("total_memory_available_override_value = 4GB" "vm_memory_calculation_strategy = allocated")
  for n in single strict oauth c1 c2 c3; do
    printf '%s\n' "${common[@]}" >"$ROOT/etc/rabbitmq/warren-$n.conf"
    echo "[]." >"$ROOT/etc/rabbitmq/warren-$n.advanced.config"
    echo "[]." >"$ROOT/etc/rabbitmq/warren-$n.plugins"
  done
  printf '%s\n' "deprecated_features.permit.transient_nonexcl_queues = false" "deprecated_features.permit.global_qos = false" >>"$ROOT/etc/rabbitmq/warren-strict.conf"
  echo "[rabbitmq_auth_backend_oauth2]." >"$ROOT/etc/rabbitmq/warren-oauth.plugins"
  cat >"$ROOT/etc/rabbitmq/warren-oauth.advanced.config" <<'ERL'
[{rabbit, [{auth_backends, [rabbit_auth_backend_oauth2, rabbit_auth_backend_internal]}]},
 {rabbitmq_auth_backend_oauth2, [{resource_server_id, <<"warren">>}]}].
ERL
  chmod 644 "$ROOT"/etc/rabbitmq/warren-*
}

install() {
  if installed; then
    return 0
  fi
  if [[ -x "$ROOT/usr/sbin/rabbitmq-server" && -f "$ROOT/etc/hosts" ]]; then
    write_configs
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap (apt-get install -y debootstrap)"
    apt-get install -y -q debootstrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q debootstrap >/dev/null; } ||
      die "apt-get install debootstrap failed"
  fi
  if [[ ! -x "$ROOT/usr/bin/apt-get" ]]; then
    say "debootstrap --variant=minbase sid $ROOT (about 30 s)"
    rm -rf "$ROOT"
    debootstrap --variant=minbase sid "$ROOT" >"$ROOT.debootstrap.log" 2>&1 || die "debootstrap failed; see $ROOT.debootstrap.log"
  fi
  say "apt-get install rabbitmq-server in the sid root"
  chroot "$ROOT" "${APT[@]}" update >/dev/null || die "apt-get update in the sid root failed"
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y --no-install-recommends rabbitmq-server >/dev/null ||
    die "apt-get install rabbitmq-server in the sid root failed"
  cp /etc/hosts "$ROOT/etc/hosts"
  write_configs
  # rabbitmq-server's package starts nothing inside a chroot; the nodes are ours to start.
  installed || die "rabbitmq-server is still missing in $ROOT"
  say "installed: $(chroot "$ROOT" dpkg-query -W -f '${Package} ${Version}' rabbitmq-server)"
}

answers_amqp() {
  local port="$1" first
  first="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    head -c 3 <&3 | od -An -tx1 | tr -d " \n"
  ' "$port" 2>/dev/null)" || return 1
  [[ "$first" == "010000" ]]
}

# The Erlang VMs of node NODE of any checkout: started with RABBITMQ_NODENAME=warren-NODE@localhost
# in their environment (the command line does not name it); each as "pid root".
node_beams() {
  local p
  for p in $(pgrep -x beam.smp || true); do
    if { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "RABBITMQ_NODENAME=warren-$1@localhost"; then
      echo "$p $(readlink "/proc/$p/root" 2>/dev/null || echo '?')"
    fi
  done
}

# This checkout's node NODE: the VM whose root is this checkout's.
beam_pid() {
  local p root
  while read -r p root; do
    [[ "$root" == "$ROOT" ]] && echo "$p" && return 0
  done < <(node_beams "$1")
  return 0
}

# Something answers on the node's port that is not this checkout's node (another clone's, or an
# older run's whose root was deleted): say which, in one line, rather than test against it.
refuse_foreign() {
  local node="$1" amqp
  read -r amqp _ _ < <(node_ports "$node")
  [[ -n "$(beam_pid "$node")" ]] && return 0
  local others
  others="$(node_beams "$node" | awk '{ printf "%s%s (pid %s, root %s)", (NR > 1 ? ", " : ""), "warren-'"$node"'", $1, substr($0, index($0, $2)) }')"
  die "127.0.0.1:$amqp is served by a node that is not this checkout's (${others:-not a warren node}): stop it (kill the pid, or rabbitmq43.sh stop $node from its checkout), or point WARREN_SID_ROOT at its root"
}

# Launches the node's VM unless it runs (or answers) already; does not wait.
launch() {
  local node="$1" amqp
  read -r amqp _ _ < <(node_ports "$node")
  if answers_amqp "$amqp"; then
    refuse_foreign "$node"
    return 0
  fi
  if [[ -z "$(beam_pid "$node")" ]]; then
    say "starting node warren-$node (AMQP 127.0.0.1:$amqp)"
    in_root "$node" /usr/sbin/rabbitmq-server -detached >/dev/null 2>&1 || die "rabbitmq-server -detached failed for $node"
  fi
}

# Waits until the node answers AMQP.
await_node() {
  local node="$1" amqp
  read -r amqp _ _ < <(node_ports "$node")
  local deadline=$((SECONDS + WAIT_SECONDS))
  until answers_amqp "$amqp"; do
    ((SECONDS < deadline)) || die "node $node did not answer AMQP on 127.0.0.1:$amqp within ${WAIT_SECONDS}s; its log is in $ROOT/var/log/rabbitmq/$node/"
    # Its app may be stopped (an interrupted test's stop_app): start it.
    if ((SECONDS % 10 == 0)) && ctl "$node" -q ping >/dev/null 2>&1; then ctl "$node" -q start_app >/dev/null 2>&1 || true; fi
    sleep 1
  done
}

start() {
  local node="${1:-single}"
  install
  launch "$node"
  await_node "$node"
}

stop() {
  local node="${1:-single}"
  installed || return 0
  [[ -n "$(beam_pid "$node")" ]] || return 0
  ctl "$node" -q stop >/dev/null 2>&1 || true
  local deadline=$((SECONDS + 30))
  while [[ -n "$(beam_pid "$node")" ]]; do
    if ((SECONDS >= deadline)); then
      kill -9 "$(beam_pid "$node")" 2>/dev/null || true
    fi
    sleep 0.5
  done
}

kill_node() {
  local node="${1:?kill needs a node}" pid
  pid="$(beam_pid "$node")"
  [[ -n "$pid" ]] || return 0
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

reset() {
  local node="${1:-single}"
  stop "$node"
  rm -rf "$ROOT/var/lib/rabbitmq/nodes/$node"
  start "$node"
}

cluster_start() {
  install
  local n
  # All three at once: a cluster member that was stopped waits for a majority of its peers
  # before it boots (Khepri), so starting them one after the other can wait forever.
  for n in c1 c2 c3; do launch "$n"; done
  for n in c1 c2 c3; do await_node "$n"; done
  # The nodes share the root's Erlang cookie; c2 and c3 join c1 unless they are in its cluster already.
  for n in c2 c3; do
    if ! ctl c1 -q cluster_status --formatter json 2>/dev/null | grep -q "\"warren-$n@localhost\""; then
      say "joining $n to c1"
      ctl "$n" -q stop_app >/dev/null
      ctl "$n" -q reset >/dev/null
      ctl "$n" -q join_cluster warren-c1@localhost >/dev/null || die "join_cluster failed for $n"
      ctl "$n" -q start_app >/dev/null
    fi
  done
  ctl c1 -q await_online_nodes 3 --timeout 60 >/dev/null 2>&1 || true
  say "cluster c1 c2 c3 is up"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  install) install ;;
  start) start "${1:-single}" ;;
  stop) stop "${1:-single}" ;;
  kill) kill_node "${1:-}" ;;
  pid) beam_pid "${1:?pid needs a node}" ;;
  reset) reset "${1:-single}" ;;
  ctl)
    node="${1:?ctl needs a node}"
    shift
    install
    ctl "$node" "$@"
    ;;
  queues | plugins | diagnostics)
    node="${1:?$cmd needs a node}"
    shift
    install
    in_root "$node" timeout 60 "/usr/sbin/rabbitmq-$cmd" "$@"
    ;;
  signing-key)
    node="${1:?signing-key needs a node}"
    install
    ctl "$node" -q add_signing_key "${2:?signing-key needs a key id}" --json "${3:?signing-key needs the key as a JWK}"
    ;;
  url)
    read -r amqp _ _ < <(node_ports "${1:-single}")
    echo "amqp://guest:guest@127.0.0.1:$amqp"
    ;;
  cluster-start) cluster_start ;;
  cluster-stop) for n in c3 c2 c1; do stop "$n"; done ;;
  cluster-teardown)
    for n in c3 c2 c1; do stop "$n"; done
    rm -rf "$ROOT"/var/lib/rabbitmq/nodes/c{1,2,3}
    ;;
  *)
    sed -n '2,26p' "$0" >&2
    exit 2
    ;;
esac
