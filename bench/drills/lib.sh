# Shared by the fault drills (sourced, not run). Each drill builds the
# release binary, starts its own servers on free loopback ports, works in a
# temporary folder and keeps every output it saw under bench/out/drills/ so
# that the secrets drill can search them all.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/bench/one-edition.sh"
work=$(mktemp -d)
out="$root/bench/out/drills"
mkdir -p "$out"
# Known values, so the secrets drill can look for them in every output.
SMTP_USER=drill
SMTP_PASSWORD='drill-smtp-pw-7Hq2Xv9c'
export TIDINGS_SECRET='drill-secret-Kp4mW8zR1tY6uN3bQa7Lx2Vc'
export RUST_LOG=${RUST_LOG:-debug}
PG=${DRILL_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

echo "building tidings (release)…" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/tidings"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
    for _ in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

# start_sink LOG [faults…]: the drill SMTP server; sets SMTP_PORT.
start_sink() {
    SMTP_PORT=$(free_port)
    python3 "$here/smtp_sink.py" "$SMTP_PORT" "$1" --auth "$SMTP_USER:$SMTP_PASSWORD" "${@:2}" &
    pids+=($!)
    wait_for_port "$SMTP_PORT"
}

# write_config DATABASE_URL: one edition "weekly" of a 10-story feed, mail
# to the drill sink with AUTH, retries after 1 s so a drill ends quickly.
write_config() {
    [ -f "$work/feeds/feed0.xml" ] || python3 "$root/bench/collect/gen_feeds.py" "$work/feeds" 1 10
    one_edition_config Drill "$1" "smtp://$SMTP_USER:$SMTP_PASSWORD@127.0.0.1:${SMTP_PORT:-2525}" \
        $'concurrency = 8\nmax_attempts = 6\nretry_initial = "1s"\nretry_max = "2s"\nlease = "2s"' \
        "$work/feeds/feed0.xml" > "$work/tidings.toml"
}

# tidings NAME ARGS…: runs the CLI, keeping its output (stdout and stderr)
# as bench/out/drills/NAME.log; returns its exit code.
tidings() {
    local name=$1
    shift
    local rc=0
    "$bin" --config "$work/tidings.toml" "$@" >> "$out/$name.log" 2>&1 || rc=$?
    return $rc
}

# setup DATABASE_KIND DATABASE_URL N: schema, stories and N subscribers.
setup() {
    tidings "$DRILL-setup" migrate
    tidings "$DRILL-setup" collect
    python3 "$root/bench/send/add_subscribers.py" "$1" "$2" "$3"
}

# new_pg_database: a fresh PostgreSQL database for this drill; prints its URL.
new_pg_database() {
    local name="tidings_drill_$$_$1"
    psql "$PG" -qc "DROP DATABASE IF EXISTS $name" > /dev/null 2>&1 || true
    psql "$PG" -qc "CREATE DATABASE $name" > /dev/null
    echo "${PG%/*}/$name"
}

# verdict NAME CONDITION DETAILS: the drill's last line.
verdict() {
    if eval "$2"; then
        echo "DRILL $1: PASS ($3)"
    else
        echo "DRILL $1: FAIL ($3)"
        exit 1
    fi
}
