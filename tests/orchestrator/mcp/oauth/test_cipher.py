from pathlib import Path

import pytest

from orchestrator.mcp.oauth.cipher import SealedDataUnreadable, TokenCipher, development_key

OLD = "the-old-key-the-old-key-the-old-key-0001"
NEW = "the-new-key-the-new-key-the-new-key-0002"


def test_sealed_data_opens_again_and_does_not_show_the_secret() -> None:
    cipher = TokenCipher([NEW])

    sealed = cipher.seal({"access_token": "secret-token-value"})

    assert "secret-token-value" not in sealed
    assert cipher.open(sealed) == {"access_token": "secret-token-value"}


def test_a_rotated_key_still_opens_what_the_old_one_sealed_and_seals_with_the_new_one() -> None:
    sealed_before = TokenCipher([OLD]).seal({"token": "t"})
    rotated = TokenCipher.from_setting(f"{NEW},{OLD}")

    sealed_after = rotated.seal({"token": "t"})

    assert rotated.open(sealed_before) == {"token": "t"}
    assert TokenCipher([NEW]).open(sealed_after) == {"token": "t"}
    with pytest.raises(SealedDataUnreadable):
        TokenCipher([OLD]).open(sealed_after)


@pytest.mark.parametrize("sealed", ["not-a-token", "gAAAAA" + "x" * 60, ""])
def test_garbage_or_altered_data_is_refused(sealed: str) -> None:
    with pytest.raises(SealedDataUnreadable):
        TokenCipher([NEW]).open(sealed)


def test_data_sealed_with_another_key_is_refused() -> None:
    with pytest.raises(SealedDataUnreadable):
        TokenCipher([NEW]).open(TokenCipher([OLD]).seal({"token": "t"}))


def test_an_empty_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        TokenCipher([" "])


def test_the_development_key_is_made_once_and_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = development_key(tmp_path)
    second = development_key(tmp_path)

    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "token-encryption.key").stat().st_mode & 0o777 == 0o600
