#!/bin/sh
# Print fresh random values for every secret docker-compose.yml needs, as NAME=value lines for .env:
#
#   scripts/compose-secrets.sh >> .env
#
# Run it once: changing JWT_SECRET_KEY signs everyone out, changing TOKEN_ENCRYPTION_KEY makes stored tokens
# unreadable, and the database, Redis and Qdrant keep the passwords they were first started with.
set -eu

case "${1:-}" in
    -h | --help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac

random() {
    python3 -c 'import secrets; print(secrets.token_urlsafe(36))'
}

for name in JWT_SECRET_KEY FRONTEND_SECRET_KEY MCP_SERVICE_TOKEN POSTGRES_PASSWORD REDIS_PASSWORD QDRANT_API_KEY \
    GRAFANA_ADMIN_PASSWORD; do
    if grep -qs "^$name=." .env; then
        echo "compose-secrets.sh: $name is already set in .env; left out" >&2
        continue
    fi
    echo "$name=$(random)"
done
# 32 random bytes, url-safe base64: a Fernet key, and a long random secret for any other use.
if grep -qs "^TOKEN_ENCRYPTION_KEY=." .env; then
    echo "compose-secrets.sh: TOKEN_ENCRYPTION_KEY is already set in .env; left out" >&2
else
    echo "TOKEN_ENCRYPTION_KEY=$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
fi
