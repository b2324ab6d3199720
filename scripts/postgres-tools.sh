# Functions shared by backup.sh and restore.sh (sourced, not run).

# The libpq form of a database URL (postgresql://...), or failure for a database that is not PostgreSQL.
libpq_url() {
    case $1 in
        postgresql+asyncpg://* | postgresql+psycopg://*) echo "postgresql://${1#*://}" ;;
        postgres://* | postgresql://*) echo "$1" ;;
        *) return 1 ;;
    esac
}

# The URL with its password hidden.
redacted() {
    printf '%s\n' "$1" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#'
}

# The client tool ($1: pg_dump or pg_restore) to use with the server at URL $2: $3 when given, else the one of the
# server's major version under /usr/lib/postgresql, else the one on PATH; refused when older than the server.
matching_tool() {
    local tool=$1 url=$2 chosen=${3:-} server_major tool_major
    server_major=$(psql --no-psqlrc --tuples-only --no-align --dbname="$url" \
        --command='SHOW server_version_num') || {
        echo "$tool: cannot reach $(redacted "$url")" >&2
        return 1
    }
    server_major=$((server_major / 10000))
    if [ -z "$chosen" ]; then
        if [ -x "/usr/lib/postgresql/$server_major/bin/$tool" ]; then
            chosen="/usr/lib/postgresql/$server_major/bin/$tool"
        else
            chosen=$(command -v "$tool") || {
                echo "$tool is not installed (Debian: apt-get install postgresql-client-$server_major)" >&2
                return 1
            }
        fi
    fi
    tool_major=$("$chosen" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
    if [ "$tool_major" -lt "$server_major" ]; then
        echo "$chosen is version $tool_major, older than the server ($server_major): install postgresql-client-$server_major" >&2
        return 1
    fi
    echo "$chosen"
}

# A request to Qdrant ($1 method, $2 URL, more curl arguments after), with its API key; the body on stdout.
qdrant() {
    local method=$1 url=$2
    shift 2
    local headers=()
    if [ -n "${VECTOR_DB_API_KEY:-}" ]; then
        headers=(--header "api-key: $VECTOR_DB_API_KEY")
    fi
    curl --silent --show-error --fail --max-time 600 --connect-timeout 10 --request "$method" "${headers[@]}" "$@" "$url"
}

# Run Python code ($1) on the JSON document read from stdin, bound to `data`.
json_lines() {
    python3 -c "import json, sys
data = json.load(sys.stdin)
$1"
}
