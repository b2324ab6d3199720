#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh: the database from its dump, each Qdrant collection from its snapshot.
#
#   scripts/restore.sh --from FOLDER [--database-url URL] [--qdrant-url URL] [--no-qdrant] [--yes]
#
#   --from FOLDER       a backup folder (assistant-<UTC time>/)
#   --database-url URL  the database to restore into (default: $DATABASE_URL); it must exist (scripts/init_db.py
#                       creates it)
#   --qdrant-url URL    Qdrant (default: $VECTOR_DB_URL; its key from $VECTOR_DB_API_KEY)
#   --no-qdrant         restore the database only
#   --yes               do it: the database's tables and the collections are replaced by the backup's
#
# Stop the orchestrator first (scale it to 0), so that nothing writes meanwhile. The files are checked against the
# manifest's SHA-256 sums before anything is touched, and the database is restored in one transaction: it is either
# the backup's or left as it was. pg_restore must be of the server's major version or newer ($PG_RESTORE to choose).
# Exit status: 0 done, 1 failed, 2 bad usage.
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
fail() {
    echo "restore.sh: $*" >&2
    exit 1
}

folder=""
database_url=${DATABASE_URL:-}
qdrant_url=${VECTOR_DB_URL:-}
confirmed=false
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --from) folder=${2:?--from needs a folder}; shift 2 ;;
        --database-url) database_url=${2:?--database-url needs a URL}; shift 2 ;;
        --qdrant-url) qdrant_url=${2:?--qdrant-url needs a URL}; shift 2 ;;
        --no-qdrant) qdrant_url=""; shift ;;
        --yes) confirmed=true; shift ;;
        *) echo "restore.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/postgres-tools.sh
. "$here/postgres-tools.sh"

[ -n "$folder" ] || { echo "restore.sh: say which backup with --from FOLDER (see --help)" >&2; exit 2; }
[ -f "$folder/manifest.txt" ] && [ -f "$folder/database.dump" ] || fail "$folder is not a backup (no manifest.txt and database.dump)"
[ -n "$database_url" ] || fail "no database: set DATABASE_URL or pass --database-url"
libpq_url=$(libpq_url "$database_url") || fail "only PostgreSQL databases are restored here"

echo "restore.sh: checking $folder against its manifest"
(cd "$folder" && sed -n '/^files:$/,$p' manifest.txt | tail -n +2 | sha256sum --check --quiet --strict) \
    || fail "$folder does not match its manifest: a file is damaged or missing"

if [ "$confirmed" != true ]; then
    echo "restore.sh: this replaces the contents of $(redacted "$libpq_url")${qdrant_url:+ and the collections of $qdrant_url}; pass --yes to go ahead" >&2
    exit 2
fi

pg_restore=$(matching_tool pg_restore "$libpq_url" "${PG_RESTORE:-}")
echo "restore.sh: restoring the database into $(redacted "$libpq_url") with $("$pg_restore" --version)"
"$pg_restore" --clean --if-exists --no-owner --single-transaction --exit-on-error --dbname="$libpq_url" \
    "$folder/database.dump"

if [ -n "$qdrant_url" ] && [ -d "$folder/qdrant" ]; then
    qdrant_url=${qdrant_url%/}
    for snapshot in "$folder"/qdrant/*.snapshot; do
        [ -e "$snapshot" ] || continue
        collection=$(basename "$snapshot" .snapshot)
        echo "restore.sh: recovering Qdrant collection $collection"
        qdrant POST "$qdrant_url/collections/$collection/snapshots/upload?priority=snapshot&wait=true" \
            --form "snapshot=@$snapshot" >/dev/null
    done
fi
echo "restore.sh: restored $folder"
