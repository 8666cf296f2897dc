#!/bin/sh
# Sets up a local PostgreSQL for ork's SQL capability tests and prints its
# DSN on standard output (everything else goes to standard error), so that
#
#   ORK_TEST_POSTGRES_DSN=$(./toolchain/postgres-test-db.sh) go test ./internal/capability/sqlcap/
#
# runs the PostgreSQL half of those tests. Idempotent: it installs Debian's
# postgresql if it is missing, creates and starts a cluster if there is none
# running, and makes sure the role "ork" (with the password below) and the
# database "ork_test" it owns exist. When all that is already in place it only
# checks that it can log in, and returns at once. Run it as root (or with
# sudo); the server listens on 127.0.0.1 only (Debian's default).
#
# The password is a fixed test-only one: this database holds nothing but what
# the tests make.
set -eu

# Only the DSN goes to standard output: keep the original stdout as fd 3 and
# send everything else (apt, pg_ctlcluster's "Removed stale pid file.", ...)
# to standard error. Commands that may leave a daemon behind (apt's postinst,
# pg_createcluster, pg_ctlcluster) run with fd 3 closed, or the server would
# hold the caller's $(...) open forever.
exec 3>&1 1>&2

ROLE=ork
DB=ork_test
PASSWORD=${ORK_TEST_POSTGRES_PASSWORD:-ork-test-secret}

say() { echo "postgres-test-db: $*" >&2; }

# The running cluster's port, or the port of the first cluster when none runs.
cluster_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" { print $3; found = 1; exit } NR == 1 { first = $3 } END { if (!found && first != "") print first }'
}

dsn() { echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$1/$DB?sslmode=disable" >&3; }

# Fast path: the database is up and the role can log in.
can_login() {
  command -v psql >/dev/null 2>&1 || return 1
  PGPASSWORD=$PASSWORD PGCONNECT_TIMEOUT=3 psql -X -q -w -h 127.0.0.1 -p "$1" -U "$ROLE" -d "$DB" -tAc 'SELECT 1' >/dev/null 2>&1
}

PORT=$(cluster_port)
if [ -n "$PORT" ] && can_login "$PORT"; then
  dsn "$PORT"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

if ! command -v pg_lsclusters >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  say "installing postgresql from Debian's archive"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null 3>&-
fi

# A cluster: Debian's package makes "main" unless told not to.
if [ -z "$(pg_lsclusters --no-header 2>/dev/null)" ]; then
  # shellcheck disable=SC2012 # version numbers
  VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)
  say "creating cluster $VERSION/main"
  $SUDO pg_createcluster "$VERSION" main >/dev/null 3>&-
fi

# Start it when it is down (a container has no init system to do it).
LINE=$(pg_lsclusters --no-header | awk '$4 == "online" { print; found = 1; exit } NR == 1 { first = $0 } END { if (!found) print first }')
# shellcheck disable=SC2086 # split the line into its fields
set -- $LINE
VERSION=$1 CLUSTER=$2 PORT=$3 STATUS=$4
if [ "$STATUS" != online ]; then
  say "starting cluster $VERSION/$CLUSTER on port $PORT"
  if ! $SUDO pg_ctlcluster "$VERSION" "$CLUSTER" start 3>&-; then
    # A machine image taken while the server ran (or a kill -9) leaves lock
    # files naming a dead postmaster; clear those and try once more.
    for lock in /var/run/postgresql/.s.PGSQL."$PORT".lock; do
      [ -f "$lock" ] || continue
      pid=$($SUDO head -1 "$lock" 2>/dev/null || true)
      if [ -n "$pid" ] && ! $SUDO kill -0 "$pid" 2>/dev/null; then
        say "removing stale lock $lock (postmaster $pid is gone)"
        $SUDO rm -f "$lock"
      fi
    done
    sleep 1
    $SUDO pg_ctlcluster "$VERSION" "$CLUSTER" start 3>&-
  fi
fi

as_postgres() {
  if [ -n "$SUDO" ]; then
    sudo -u postgres -- "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u postgres -- "$@"
  else
    # shellcheck disable=SC2016 # expanded by the postgres user's shell
    su -s /bin/sh postgres -c 'exec "$0" "$@"' "$@"
  fi
}
psql_admin() {
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres -tA "$@"
}

# Wait for the server to accept connections (pg_ctlcluster waits already;
# this covers a cluster started by someone else a moment ago).
i=0
until as_postgres pg_isready -q -p "$PORT" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 30 ]; then
    say "the server on port $PORT does not accept connections"
    exit 1
  fi
  sleep 1
done

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" = 1 ]; then
  psql_admin -c "ALTER ROLE $ROLE WITH LOGIN PASSWORD '$PASSWORD'" >/dev/null
else
  say "creating role $ROLE"
  psql_admin -c "CREATE ROLE $ROLE WITH LOGIN PASSWORD '$PASSWORD'" >/dev/null
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  say "creating database $DB"
  psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >/dev/null
fi

if ! can_login "$PORT"; then
  say "cannot log in as $ROLE to $DB on 127.0.0.1:$PORT; check pg_hba.conf allows password logins from 127.0.0.1"
  exit 1
fi
dsn "$PORT"
