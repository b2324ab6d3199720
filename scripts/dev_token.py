"""Print a bearer token for calling the orchestrator's API directly in development: ``dev_token.py [name]``.

Signs ``local:<name>`` (default ``admin``) with ``JWT_SECRET_KEY`` from the environment or ``.env``, or with the
key ``make run`` generated in ``DATA_DIR/dev-secrets.json``. Refused in production.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import TypeAdapter, ValidationError

from frontend.identity import LOCAL_NAME_PATTERN, LOCAL_PROVIDER, SignedInUser, api_token
from frontend.settings import load_settings

_stored_secrets = TypeAdapter(dict[str, str])
LIFETIME_SECONDS = 12 * 3600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", nargs="?", default="admin", help="the local user's name (default: admin)")
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings.production:
        print("dev_token.py is for development; production tokens come from signing in.", file=sys.stderr)
        return 2
    if not LOCAL_NAME_PATTERN.fullmatch(args.name):
        print("A local name is 1 to 64 letters, digits, dots, dashes or underscores.", file=sys.stderr)
        return 2
    secret = settings.jwt_secret_key.get_secret_value() if settings.jwt_secret_key else None
    if secret is None:
        try:
            stored = _stored_secrets.validate_json((settings.data_dir / "dev-secrets.json").read_bytes())
            secret = stored.get("jwt_secret_key")
        except (OSError, ValidationError):
            secret = None
    if not secret:
        print("No JWT_SECRET_KEY: set one, or run `make run` once to generate it.", file=sys.stderr)
        return 1
    print(api_token(SignedInUser.of(LOCAL_PROVIDER, args.name, name=args.name), secret, LIFETIME_SECONDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
