#!/usr/bin/env bash
# Back up the assistant: a PostgreSQL dump of the conversation database and a snapshot of every Qdrant collection.
#
#   scripts/backup.sh [--output DIR] [--database-url URL] [--qdrant-url URL] [--no-qdrant]
#
#   --output DIR        where to create the backup folder assistant-<UTC time>/ (default: ./backups)
#   --database-url URL  the database (default: $DATABASE_URL); postgresql:// or postgresql+asyncpg:// URLs
#   --qdrant-url URL    Qdrant (default: $VECTOR_DB_URL; its key from $VECTOR_DB_API_KEY); none: no snapshots
#   --no-qdrant         back up the database only
#
# The folder holds database.dump (pg_dump's custom format), qdrant/<collection>.snapshot and manifest.txt with the
# SHA-256 of each file; scripts/restore.sh takes it back. pg_dump must be of the server's major version or newer:
# the script picks /usr/lib/postgresql/<server major>/bin/pg_dump when there is one (or $PG_DUMP). A backup that
# fails midway is removed, so a folder that exists is complete. Exit status: 0 done, 1 failed, 2 bad usage.
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
fail() {
    echo "backup.sh: $*" >&2
    exit 1
}

output=./backups
database_url=${DATABASE_URL:-}
qdrant_url=${VECTOR_DB_URL:-}
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --output) output=${2:?--output needs a folder}; shift 2 ;;
        --database-url) database_url=${2:?--database-url needs a URL}; shift 2 ;;
        --qdrant-url) qdrant_url=${2:?--qdrant-url needs a URL}; shift 2 ;;
        --no-qdrant) qdrant_url=""; shift ;;
        *) echo "backup.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/postgres-tools.sh
. "$here/postgres-tools.sh"

[ -n "$database_url" ] || fail "no database: set DATABASE_URL or pass --database-url"
libpq_url=$(libpq_url "$database_url") || fail "only PostgreSQL databases are backed up here (SQLite: copy DATA_DIR while the service is stopped)"
pg_dump=$(matching_tool pg_dump "$libpq_url" "${PG_DUMP:-}")

stamp=$(date -u +%Y%m%dT%H%M%SZ)
folder="$output/assistant-$stamp"
[ ! -e "$folder" ] || fail "$folder exists already"
mkdir -p "$output"
partial="$output/.assistant-$stamp.partial"
rm -rf "$partial"
mkdir -p "$partial"
trap 'rm -rf "$partial"' EXIT

echo "backup.sh: dumping $(redacted "$libpq_url") with $("$pg_dump" --version)"
"$pg_dump" --format=custom --no-owner --file="$partial/database.dump" --dbname="$libpq_url"

collections=()
if [ -n "$qdrant_url" ]; then
    qdrant_url=${qdrant_url%/}
    mkdir -p "$partial/qdrant"
    listing=$(qdrant GET "$qdrant_url/collections")
    names=$(json_lines 'for c in data["result"]["collections"]: print(c["name"])' <<<"$listing")
    while IFS= read -r collection; do
        [ -n "$collection" ] && collections+=("$collection")
    done <<<"$names"
    for collection in "${collections[@]}"; do
        echo "backup.sh: snapshot of Qdrant collection $collection"
        created=$(qdrant POST "$qdrant_url/collections/$collection/snapshots?wait=true")
        name=$(json_lines 'print(data["result"]["name"])' <<<"$created")
        qdrant GET "$qdrant_url/collections/$collection/snapshots/$name" >"$partial/qdrant/$collection.snapshot"
        qdrant DELETE "$qdrant_url/collections/$collection/snapshots/$name" >/dev/null
    done
fi

{
    echo "created: $stamp"
    echo "database: $(redacted "$libpq_url")"
    echo "pg_dump: $("$pg_dump" --version)"
    echo "qdrant: ${qdrant_url:-none}"
    echo "collections: ${collections[*]:-}"
    echo "files:"
    (cd "$partial" && find . -type f ! -name manifest.txt | sort | xargs sha256sum)
} >"$partial/manifest.txt"

mv "$partial" "$folder"
trap - EXIT
echo "backup.sh: wrote $folder ($(du -sh "$folder" | cut -f1))"
