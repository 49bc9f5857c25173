"""oras-py's ``oras.auth.basic``: the backend that sends basic credentials up front."""

from __future__ import annotations

from typing import Any

from . import authenticator

__all__ = ["BasicAuth"]


class BasicAuth(authenticator.BasicAuth):
    """Sends the configured username and password with every request; oras-py's protocol too."""

    def authenticate_request(
        self, original: Any, headers: dict[str, str] | None = None, refresh: bool = False
    ) -> tuple[dict[str, str], bool]:
        """oras-py's protocol: ``headers`` plus the basic ``Authorization``; always retry."""
        result = dict(headers or {})
        creds = self.explicit_credentials(None)
        if creds is not None and creds.username:
            result["Authorization"] = creds.basic_header()
        return result, True
