# Shared helpers for the bench/ scripts. Sourced, not executed.
# shellcheck shell=bash

BENCH_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DEFAULT_BERTH="$BENCH_REPO_ROOT/artifacts/bin/berth-runtime"

bench_die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
bench_log() { echo "$BENCH_NAME: $*" >&2; }

# bench_need CMD PACKAGE: install PACKAGE with apt-get when CMD is missing.
bench_need() {
  local cmd=$1 pkg=$2
  [[ -x $cmd ]] || command -v "$cmd" >/dev/null 2>&1 && return 0
  [[ $(id -u) -eq 0 ]] || bench_die "$cmd is missing and we are not root: apt-get install $pkg"
  bench_log "installing $pkg"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
  } || bench_die "could not install $pkg"
}

bench_require_root() {
  [[ $(id -u) -eq 0 ]] || bench_die "must run as root (containers need it)"
}

# crun refuses a hybrid host while cgroup2 owns a controller; on these machines
# that is hugetlb. Binding hugetlb to a v1 hierarchy fixes it until reboot. The
# mount is host setup (see shared/guide/host-notes.md) and is left in place.
bench_ensure_hugetlb_v1() {
  local d=/sys/fs/cgroup/hugetlb
  mountpoint -q "$d" 2>/dev/null && return 0
  [[ -e /sys/fs/cgroup/unified/cgroup.controllers ]] || return 0   # not a hybrid host
  grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers || return 0
  bench_log "mounting the hugetlb v1 hierarchy at $d (crun needs it on this hybrid host)"
  mkdir -p "$d"
  mount -t cgroup -o hugetlb cgroup "$d" || bench_die "could not mount the hugetlb v1 hierarchy"
}

# bench_make_bundle DIR ARGS_JSON: a busybox bundle, made by the project's script.
bench_make_bundle() {
  "$BENCH_REPO_ROOT/scripts/make-bundle" "$1" --args "$2" >/dev/null
}

# bench_cgroup_dirs PATTERN [MAXDEPTH]: cgroup dirs whose name matches PATTERN
# (a find -name glob) anywhere under /sys/fs/cgroup/*/. runc nests its memory
# cgroup under the caller's own (/memory/process_api/<x>/<id>), berth uses
# /<controller>/berth/<id>: search deep enough for both.
bench_cgroup_dirs() {
  find /sys/fs/cgroup -mindepth 2 -maxdepth "${2:-6}" -type d -name "$1" 2>/dev/null
}

# bench_rmdir_cgroups PATTERN: remove cgroup dirs named PATTERN, deepest first.
bench_rmdir_cgroups() {
  find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -depth -type d -name "$1" -exec rmdir {} + 2>/dev/null || true
}

# bench_median: median of the numbers on stdin, one per line.
bench_median() {
  sort -n | awk '{v[NR]=$1} END { if (NR==0) { print "nan"; exit }
    if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'
}

bench_machine() {
  echo "$(nproc) CPUs, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# bench_version RUNTIME: first line of `RUNTIME --version`.
bench_version() {
  "$1" --version 2>/dev/null | head -n1 || echo "unknown"
}
