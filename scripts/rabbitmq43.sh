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
#   rabbitmq43.sh netns-cluster-start  start nodes n1 n2 n3, each in its own network namespace, as one cluster
#   rabbitmq43.sh netns-cluster-stop   stop the three and remove their namespaces
#   rabbitmq43.sh partition NODE   cut NODE (n1, n2 or n3) off from the other two; clients still reach all three
#   rabbitmq43.sh heal             undo every partition
#   rabbitmq43.sh address NODE     print the address NODE's AMQP listener answers on
#
# Nodes: "single" (AMQP 5673) is the broker `npm test` runs against; "strict" (5674) denies
# deprecated features (test/client/rabbitmq43.test.ts); "oauth" (5675) authenticates with OAuth 2
# tokens (JWTs for resource server "warren", signed with a key its tests add) and then with its
# internal users (test/client/oauth2.test.ts); c1, c2, c3 (AMQP 5681-5683) form the cluster. n1,
# n2, n3 form a second cluster for the soak (soak/), each node in a network namespace of its own
# (warren-n1..3, addresses 10.77.0.11-13, AMQP on 5672 in each) on a bridge (wrn-br, 10.77.0.1)
# that the machine reaches them through: nodes on the one loopback cannot be cut apart, nodes in
# namespaces can (`partition` adds blackhole routes between them, so their distribution links
# stall silently while the bridge to the clients stays up). Every
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
    n1 | n2 | n3) echo "5672 25672 4369" ;;
    *) die "unknown node '$1' (single, strict, oauth, c1, c2, c3, n1, n2 or n3)" ;;
  esac
}

# A node in a namespace of its own (n1..n3)?
namespaced() { [[ "$1" == n[123] ]]; }
# The address its AMQP listener (and, for n1..n3, its distribution) answers on.
node_address() { if namespaced "$1"; then echo "10.77.0.1${1#n}"; else echo 127.0.0.1; fi; }
# The Erlang node name: n1..n3 use long names with their addresses (no name service needed).
node_name() { if namespaced "$1"; then echo "warren-$1@$(node_address "$1")"; else echo "warren-$1@localhost"; fi; }

# Runs a command in the root as its rabbitmq user, with only the environment a node needs (and,
# for n1..n3, in the node's network namespace, where the default ports are its own).
in_root() {
  local node="$1"
  shift
  local amqp dist epmd netns=() net_env
  read -r amqp dist epmd < <(node_ports "$node")
  if namespaced "$node"; then
    netns=(ip netns exec "warren-$node")
    net_env=(RABBITMQ_USE_LONGNAME=true RABBITMQ_NODE_IP_ADDRESS=0.0.0.0)
  else
    net_env=(ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
      "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}")
  fi
  "${netns[@]}" chroot --userspec=rabbitmq:rabbitmq "$ROOT" /usr/bin/env -i \
    HOME=/var/lib/rabbitmq PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    RABBITMQ_NODENAME="$(node_name "$node")" "${net_env[@]}" \
    RABBITMQ_NODE_PORT="$amqp" RABBITMQ_DIST_PORT="$dist" ERL_EPMD_PORT="$epmd" \
    RABBITMQ_MNESIA_BASE="/var/lib/rabbitmq/nodes/$node" RABBITMQ_LOG_BASE="/var/log/rabbitmq/$node" \
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

installed() { [[ -x "$ROOT/usr/sbin/rabbitmq-server" && -f "$ROOT/etc/hosts" ]] && grep -q net_ticktime "$ROOT/etc/rabbitmq/warren-n3.advanced.config" 2>/dev/null; }

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
  for n in single strict oauth c1 c2 c3 n1 n2 n3; do
    printf '%s\n' "${common[@]}" >"$ROOT/etc/rabbitmq/warren-$n.conf"
    echo "[]." >"$ROOT/etc/rabbitmq/warren-$n.advanced.config"
    echo "[]." >"$ROOT/etc/rabbitmq/warren-$n.plugins"
  done
  printf '%s\n' "deprecated_features.permit.transient_nonexcl_queues = false" "deprecated_features.permit.global_qos = false" >>"$ROOT/etc/rabbitmq/warren-strict.conf"
  echo "[rabbitmq_auth_backend_oauth2]." >"$ROOT/etc/rabbitmq/warren-oauth.plugins"
  # n1..n3: a partitioned peer is noticed after 10 s of silence (net_ticktime; 60 s by default),
  # so a short soak sees partitions begin and heal.
  # Their clients come from the bridge, not the loopback: guest may log in from there.
  for n in n1 n2 n3; do
    echo "[{kernel, [{net_ticktime, 10}]}]." >"$ROOT/etc/rabbitmq/warren-$n.advanced.config"
    echo "loopback_users = none" >>"$ROOT/etc/rabbitmq/warren-$n.conf"
  done
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
  local port="$1" host="${2:-127.0.0.1}" first
  first="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$0" || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    head -c 3 <&3 | od -An -tx1 | tr -d " \n"
  ' "$port" "$host" 2>/dev/null)" || return 1
  [[ "$first" == "010000" ]]
}

# The Erlang VMs of node NODE of any checkout: started with RABBITMQ_NODENAME=<its node name>
# in their environment (the command line does not name it); each as "pid root".
node_beams() {
  local p name
  name="$(node_name "$1")"
  for p in $(pgrep -x beam.smp || true); do
    if { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "RABBITMQ_NODENAME=$name"; then
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
  die "$(node_address "$node"):$amqp is served by a node that is not this checkout's (${others:-not a warren node}): stop it (kill the pid, or rabbitmq43.sh stop $node from its checkout), or point WARREN_SID_ROOT at its root"
}

# Launches the node's VM unless it runs (or answers) already; does not wait.
launch() {
  local node="$1" amqp
  read -r amqp _ _ < <(node_ports "$node")
  if answers_amqp "$amqp" "$(node_address "$node")"; then
    refuse_foreign "$node"
    return 0
  fi
  namespaced "$node" && netns_up
  if [[ -z "$(beam_pid "$node")" ]]; then
    say "starting node warren-$node (AMQP $(node_address "$node"):$amqp)"
    in_root "$node" /usr/sbin/rabbitmq-server -detached >/dev/null 2>&1 || die "rabbitmq-server -detached failed for $node"
  fi
}

# Waits until the node answers AMQP.
await_node() {
  local node="$1" amqp
  read -r amqp _ _ < <(node_ports "$node")
  local deadline=$((SECONDS + WAIT_SECONDS))
  until answers_amqp "$amqp" "$(node_address "$node")"; do
    ((SECONDS < deadline)) || die "node $node did not answer AMQP on $(node_address "$node"):$amqp within ${WAIT_SECONDS}s; its log is in $ROOT/var/log/rabbitmq/$node/"
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

# Starts the three nodes PREFIX1..3 (c or n) and joins 2 and 3 to 1 unless they are joined already.
cluster_start() {
  local prefix="$1" n
  install
  # All three at once: a cluster member that was stopped waits for a majority of its peers
  # before it boots (Khepri), so starting them one after the other can wait forever.
  for n in 1 2 3; do launch "$prefix$n"; done
  for n in 1 2 3; do await_node "$prefix$n"; done
  # The nodes share the root's Erlang cookie.
  for n in 2 3; do
    if ! ctl "${prefix}1" -q cluster_status --formatter json 2>/dev/null | grep -q "\"$(node_name "$prefix$n")\""; then
      say "joining $prefix$n to ${prefix}1"
      ctl "$prefix$n" -q stop_app >/dev/null
      ctl "$prefix$n" -q reset >/dev/null
      ctl "$prefix$n" -q join_cluster "$(node_name "${prefix}1")" >/dev/null || die "join_cluster failed for $prefix$n"
      ctl "$prefix$n" -q start_app >/dev/null
    fi
  done
  ctl "${prefix}1" -q await_online_nodes 3 --timeout 60 >/dev/null 2>&1 || true
  say "cluster ${prefix}1 ${prefix}2 ${prefix}3 is up"
}

# The namespaces of n1..n3 and the bridge the machine reaches them through (idempotent).
netns_up() {
  ip link show wrn-br >/dev/null 2>&1 || {
    ip link add wrn-br type bridge && ip addr add 10.77.0.1/24 dev wrn-br && ip link set wrn-br up
  } || die "could not make the bridge wrn-br (needs root and iproute2)"
  local n
  for n in n1 n2 n3; do
    ip netns list | grep -qw "warren-$n" && continue
    # A link left by a namespace that outlived its name (a process kept it alive) is in the way.
    ip link del "wrn-$n" 2>/dev/null || true
    ip netns add "warren-$n" &&
      ip link add "wrn-$n" type veth peer name eth0 netns "warren-$n" &&
      ip link set "wrn-$n" master wrn-br up &&
      ip -n "warren-$n" addr add "$(node_address "$n")/24" dev eth0 &&
      ip -n "warren-$n" link set eth0 up &&
      ip -n "warren-$n" link set lo up || die "could not make the network namespace warren-$n"
  done
}

netns_down() {
  local n
  for n in n1 n2 n3; do
    # What still runs in it (the node's epmd outlives the node) would keep the namespace, and its
    # link, alive after `ip netns del`: end it first.
    ip netns pids "warren-$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "warren-$n" 2>/dev/null || true
    ip link del "wrn-$n" 2>/dev/null || true
  done
  ip link del wrn-br 2>/dev/null || true
}

# Blackhole routes both ways between NODE and each other node: their packets to each other are
# dropped without an answer, as on a cut link; the bridge to the machine (10.77.0.1) stays up.
partition() {
  local node="${1:?partition needs a node (n1, n2 or n3)}" other
  namespaced "$node" || die "only n1, n2 and n3 can be partitioned"
  for other in n1 n2 n3; do
    [[ "$other" == "$node" ]] && continue
    ip -n "warren-$node" route replace blackhole "$(node_address "$other")/32"
    ip -n "warren-$other" route replace blackhole "$(node_address "$node")/32"
  done
}

heal() {
  local n route
  for n in n1 n2 n3; do
    ip netns list | grep -qw "warren-$n" || continue
    while read -r route; do
      [[ -n "$route" ]] && ip -n "warren-$n" route del $route 2>/dev/null || true
    done < <(ip -n "warren-$n" route show type blackhole)
  done
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
    echo "amqp://guest:guest@$(node_address "${1:-single}"):$amqp"
    ;;
  cluster-start) cluster_start c ;;
  netns-cluster-start)
    netns_up
    cluster_start n
    ;;
  netns-cluster-stop)
    heal
    for n in n3 n2 n1; do stop "$n"; done
    netns_down
    ;;
  partition) partition "${1:-}" ;;
  heal) heal ;;
  address) node_address "${1:?address needs a node}" ;;
  cluster-stop) for n in c3 c2 c1; do stop "$n"; done ;;
  cluster-teardown)
    for n in c3 c2 c1; do stop "$n"; done
    rm -rf "$ROOT"/var/lib/rabbitmq/nodes/c{1,2,3}
    ;;
  *)
    sed -n '2,37p' "$0" >&2
    exit 2
    ;;
esac
