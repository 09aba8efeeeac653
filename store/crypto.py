"""Tokens and provider credentials at rest, encrypted with Fernet (from ``cryptography``).

Fernet (AES-128-CBC + HMAC-SHA256, timestamped) is the well-kept standard choice for small
secrets in a database column; ``MultiFernet`` would let us rotate keys later without a migration.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from integrations.errors import ConfigError


class Vault:
    """Encrypts and decrypts JSON-able values with the process's key."""

    def __init__(self, key: bytes):
        self._fernet = Fernet(key)

    def seal(self, value: Any) -> bytes:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def open(self, token: bytes | None) -> Any:
        if not token:
            return None
        try:
            return json.loads(self._fernet.decrypt(bytes(token)))
        except InvalidToken:
            raise ConfigError(
                "a stored secret cannot be decrypted: RELAIS_ENCRYPTION_KEY differs from the key it was written with"
            ) from None
