# Throwaway PostgreSQL for the tests (sourced, not run): a fresh cluster in a
# temporary directory, owned by the postgres user, listening on a free
# loopback port with trust auth, stopped and deleted when the script exits.
# shellcheck shell=bash

# start_throwaway_postgres: exports MOHO_TEST_POSTGRES_URL. Server options
# come from MOHO_PG_OPTS (default "-c fsync=off": test data is thrown away).
start_throwaway_postgres() {
    local bin port dir
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    [ -x "$bin/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql (package postgresql)"
    id postgres >/dev/null 2>&1 || die "user postgres missing (package postgresql creates it)"
    for port in $(seq 55432 55532); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
    done
    dir=$(mktemp -d /tmp/moho-pg.XXXXXX)
    chown postgres: "$dir"
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log"; die "initdb failed"; }
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 ${MOHO_PG_OPTS--c fsync=off}" start >/dev/null \
        || { cat "$dir/server.log"; die "PostgreSQL did not start"; }
    MOHO_PG_DIR=$dir
    MOHO_PG_BIN=$bin
    trap 'runuser -u postgres -- "$MOHO_PG_BIN/pg_ctl" -D "$MOHO_PG_DIR/data" -m immediate stop >/dev/null 2>&1; rm -rf "$MOHO_PG_DIR"' EXIT
    export MOHO_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "throwaway PostgreSQL at $MOHO_TEST_POSTGRES_URL"
}
